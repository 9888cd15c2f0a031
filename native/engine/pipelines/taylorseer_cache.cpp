#include "pipelines/taylorseer_cache.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/errors.hpp"

namespace ovd {
namespace {

constexpr size_t kOrders = 2;  // f0 and f1: first-order extrapolation

// The effective "disable after" step, or nullopt when counting from the end goes below 0.
std::optional<size_t> disable_after(const TaylorSeerConfig& config, size_t num_steps) {
    int64_t after = config.disable_cache_after_step;
    if (after < 0) after += static_cast<int64_t>(num_steps);
    if (after < 0) return std::nullopt;
    return static_cast<size_t>(after);
}

bool computes_at(size_t step, const TaylorSeerConfig& config, size_t num_steps) {
    const size_t warm_up = std::max(static_cast<size_t>(config.disable_cache_before_step), kOrders);
    if (step < warm_up) return true;
    if (const auto after = disable_after(config, num_steps); after && step >= *after) return true;
    const size_t offset = step - warm_up, interval = static_cast<size_t>(config.cache_interval);
    if (offset < interval - 1) return false;
    return (offset - (interval - 1)) % interval == 0;
}

}  // namespace

std::vector<bool> TaylorSeerCache::schedule(const TaylorSeerConfig& config, size_t num_steps) {
    std::vector<bool> out(num_steps);
    for (size_t s = 0; s < num_steps; ++s) out[s] = computes_at(s, config, num_steps);
    return out;
}

std::optional<TaylorSeerConfig> TaylorSeerCache::config_for(const GenerationParams& params, bool on_by_default) {
    if (params.disable_taylorseer) {
        if (params.taylorseer) throw invalid_param("taylorseer", "taylorseer: pass a config or disable it, not both");
        return std::nullopt;
    }
    if (params.taylorseer) return params.taylorseer;
    if (on_by_default) return TaylorSeerConfig{};
    return std::nullopt;
}

TaylorSeerCache::TaylorSeerCache(const std::optional<TaylorSeerConfig>& config, size_t num_steps) {
    if (!config) return;
    if (config->cache_interval < 2)
        throw invalid_param("taylorseer", "taylorseer.cacheInterval must be at least 2, got " + std::to_string(config->cache_interval));
    if (config->disable_cache_before_step < 0)
        throw invalid_param("taylorseer", "taylorseer.disableCacheBeforeStep must not be negative, got " +
                                              std::to_string(config->disable_cache_before_step));
    const size_t before = static_cast<size_t>(config->disable_cache_before_step);
    if (before >= num_steps) return;
    const auto after = disable_after(*config, num_steps);
    if (!after || *after <= before) return;
    schedule_ = schedule(*config, num_steps);
    for (size_t s = 0; s < num_steps; ++s)
        if (!schedule_[s]) last_prediction_step_ = s;
    active_ = last_prediction_step_.has_value();
    if (!active_) schedule_.clear();
}

void TaylorSeerCache::update(size_t step, const float* output, size_t count) {
    if (!active_) return;
    // No later step is predicted: the factors would never be used.
    if (last_prediction_step_ && step >= *last_prediction_step_) return;
    if (last_update_step_) {
        if (f0_.size() != count) throw EngineError(ErrorCode::Internal, "TaylorSeer: the output size changed between steps");
        const float divisor = 1.0f / static_cast<float>(step - *last_update_step_);
        f1_.resize(count);
        for (size_t i = 0; i < count; ++i) f1_[i] = (output[i] - f0_[i]) * divisor;
    }
    f0_.assign(output, output + count);
    last_update_step_ = step;
}

void TaylorSeerCache::predict(size_t step, float* output) const {
    if (!last_update_step_ || f1_.size() != f0_.size() || step <= *last_update_step_)
        throw EngineError(ErrorCode::Internal, "TaylorSeer: no factors to predict step " + std::to_string(step) + " from");
    const float coefficient = static_cast<float>(std::pow(static_cast<double>(step - *last_update_step_), 1.0));
    for (size_t i = 0; i < f0_.size(); ++i) output[i] = f0_[i] + f1_[i] * coefficient;
}

}  // namespace ovd
