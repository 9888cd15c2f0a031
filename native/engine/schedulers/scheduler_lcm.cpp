// Latent Consistency Model scheduler. Strength shrinks the original 50-step training grid instead of
// slicing the inference steps, and noise is injected on every step but the last (see docs).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

// LCM interpolates betas WITH the end point (unlike the other UNet schedulers).
std::vector<float> lcm_betas(const BetaConfig& config, const ConfigReader& reader) {
    if (!config.trained_betas.empty()) return config.trained_betas;
    const size_t n = config.num_train_timesteps;
    std::vector<float> betas;
    if (config.schedule == BetaSchedule::Linear) {
        for (size_t i = 0; i < n; ++i)
            betas.push_back(config.beta_start + (config.beta_end - config.beta_start) * static_cast<float>(i) / static_cast<float>(n - 1));
    } else if (config.schedule == BetaSchedule::ScaledLinear) {
        for (float root : linspace<float, float>(std::sqrt(config.beta_start), std::sqrt(config.beta_end), n, true))
            betas.push_back(root * root);
    } else {
        reader.invalid("beta_schedule", "'squaredcos_cap_v2' is not supported (use 'linear' or 'scaled_linear')");
    }
    return betas;
}

class LCMScheduler final : public AlphaScheduleScheduler {
public:
    explicit LCMScheduler(const ConfigReader& reader)
        : AlphaScheduleScheduler(false),
          m_original_steps(reader.get<size_t>("original_inference_steps", 50)),
          m_clip_sample(reader.get<bool>("clip_sample", false)),
          m_clip_sample_range(reader.get<float>("clip_sample_range", 1.0f)),
          m_timestep_scaling(reader.get<float>("timestep_scaling", 10.0f)) {
        const BetaConfig betas = read_beta_config(reader, 0.00085f, 0.012f, BetaSchedule::ScaledLinear);
        if (reader.prediction_type(PredictionType::Epsilon) != PredictionType::Epsilon)
            reader.invalid("prediction_type", "LCM supports only 'epsilon'");
        if (reader.get<bool>("thresholding", false)) reader.invalid("thresholding", "true is not supported by LCM");
        if (m_original_steps == 0 || m_original_steps > betas.num_train_timesteps)
            reader.invalid("original_inference_steps", "must be in [1, num_train_timesteps]");
        m_num_train_timesteps = betas.num_train_timesteps;
        m_alphas_cumprod = alphas_cumprod_from_betas(lcm_betas(betas, reader));
        m_final_alpha_cumprod = reader.get<bool>("set_alpha_to_one", true) ? 1.0f : m_alphas_cumprod[0];
    }

    SchedulerType type() const override { return SchedulerType::LCM; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        const size_t k = m_num_train_timesteps / m_original_steps;
        const float scaled = static_cast<float>(m_original_steps) * strength;
        const size_t origin_count = scaled > 0.0f ? static_cast<size_t>(scaled) : 0;
        if (num_inference_steps == 0 || origin_count == 0)
            throw std::invalid_argument("LCM: strength " + std::to_string(strength) + " with " + std::to_string(num_inference_steps) +
                                        " steps leaves no denoising step");
        // Training grid [k-1, 2k-1, ..., M*k-1] read from the end, sampled at float-spaced indices.
        m_num_inference_steps = num_inference_steps;
        m_timesteps.clear();
        for (size_t index : linspace<size_t, float>(0.0f, static_cast<float>(origin_count), num_inference_steps, false))
            m_timesteps.push_back(static_cast<int64_t>((origin_count - index) * k - 1));
    }

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t step_index, RandomGenerator& rng) override {
        const int64_t t = m_timesteps.at(step_index);
        const int64_t t_prev = step_index + 1 < m_timesteps.size() ? m_timesteps[step_index + 1] : t;
        const float alpha_t = alpha_at(m_alphas_cumprod, t);
        const float alpha_prev = t_prev >= 0 ? alpha_at(m_alphas_cumprod, t_prev) : m_final_alpha_cumprod;
        const float sqrt_alpha_t = std::sqrt(alpha_t), sqrt_alpha_prev = std::sqrt(alpha_prev);
        const float sqrt_beta_t = std::sqrt(1 - alpha_t), sqrt_beta_prev = std::sqrt(1 - alpha_prev);

        // Boundary-condition scalings with sigma_data = 0.5; the powers and the root are taken in double.
        const float scaled_t = static_cast<float>(t) * m_timestep_scaling;
        const double sigma_data_sq = 0.25, scaled_t_sq = std::pow(static_cast<double>(scaled_t), 2);
        const float c_skip = static_cast<float>(sigma_data_sq / (scaled_t_sq + sigma_data_sq));
        const float c_out = static_cast<float>(scaled_t / std::sqrt(scaled_t_sq + sigma_data_sq));

        StepResult result;
        result.has_denoised = true;
        result.denoised.resize(count);
        for (size_t i = 0; i < count; ++i) {
            float x0 = (latent[i] - sqrt_beta_t * noise_pred[i]) / sqrt_alpha_t;
            if (m_clip_sample) x0 = std::clamp(x0, -m_clip_sample_range, m_clip_sample_range);
            result.denoised[i] = c_out * x0 + c_skip * latent[i];
        }
        if (step_index + 1 != m_num_inference_steps) {
            std::vector<float> noise(count);
            rng.fill_normal(noise.data(), count);
            result.latent.resize(count);
            for (size_t i = 0; i < count; ++i) result.latent[i] = sqrt_alpha_prev * result.denoised[i] + sqrt_beta_prev * noise[i];
        } else {
            result.latent = result.denoised;
        }
        return result;
    }

private:
    size_t m_num_train_timesteps = 1000;
    size_t m_original_steps;
    bool m_clip_sample;
    float m_clip_sample_range;
    float m_timestep_scaling;
};

}  // namespace

std::unique_ptr<Scheduler> make_lcm(const ConfigReader& reader) { return std::make_unique<LCMScheduler>(reader); }

}  // namespace detail
}  // namespace ovd
