#pragma once
// TaylorSeer-Lite, the oracle's transformer-call cache for SD3 and FLUX: after a warm-up, the
// transformer runs only every cache_interval-th step; the steps between take a first-order Taylor
// extrapolation of its raw output, out(s) = f0 + f1 * (s - s0), from the last two computed steps.
#include <optional>
#include <vector>

#include "pipelines/generation_params.hpp"

namespace ovd {

class TaylorSeerCache {
public:
    // Throws invalid_argument for a config the oracle rejects (cache_interval < 2, negative
    // disable_cache_before_step). Inactive (every step computes) without a config, or when the
    // config would predict no step of a `num_steps` run.
    TaylorSeerCache(const std::optional<TaylorSeerConfig>& config, size_t num_steps);

    bool active() const { return active_; }
    // Whether step s runs the transformer (always true when inactive).
    bool computes(size_t step) const { return !active_ || schedule_[step]; }
    // After a computed step: remembers its raw output (count floats).
    void update(size_t step, const float* output, size_t count);
    // For a predicted step: writes the extrapolated output.
    void predict(size_t step, float* output) const;

    // The compute (true) / predict (false) decision for each step, for tests and docs.
    static std::vector<bool> schedule(const TaylorSeerConfig& config, size_t num_steps);
    // The config a call runs with: the caller's, none when disabled, else the family default
    // (the oracle's defaults when `on_by_default`, i.e. SD3/FLUX text-to-image).
    static std::optional<TaylorSeerConfig> config_for(const GenerationParams& params, bool on_by_default);

private:
    bool active_ = false;
    std::vector<bool> schedule_;
    std::optional<size_t> last_prediction_step_, last_update_step_;
    std::vector<float> f0_, f1_;
};

}  // namespace ovd
