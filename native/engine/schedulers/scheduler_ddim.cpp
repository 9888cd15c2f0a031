// DDIM with eta = 0 (deterministic). LMSDiscreteScheduler configs also land here, as in the oracle.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class DDIMScheduler final : public AlphaScheduleScheduler {
public:
    explicit DDIMScheduler(const ConfigReader& reader)
        : AlphaScheduleScheduler(true), m_config(read_discrete_schedule(reader, BetaSchedule::ScaledLinear)) {
        // The oracle accepts these at load time but fails in step(); fail early instead.
        if (reader.get<bool>("clip_sample", true))
            reader.invalid("clip_sample", "true is not supported by DDIM (set \"clip_sample\": false)");
        if (reader.get<bool>("thresholding", false)) reader.invalid("thresholding", "true is not supported by DDIM");
        std::vector<float> betas = betas_endpoint_false(m_config.betas, reader);
        if (reader.get<bool>("rescale_betas_zero_snr", false)) rescale_zero_terminal_snr(betas);
        m_alphas_cumprod = alphas_cumprod_from_betas(betas);
        m_final_alpha_cumprod = reader.get<bool>("set_alpha_to_one", true) ? 1.0f : m_alphas_cumprod[0];
    }

    SchedulerType type() const override { return SchedulerType::DDIM; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        if (num_inference_steps > m_config.betas.num_train_timesteps)
            throw std::invalid_argument("num_inference_steps cannot be larger than num_train_timesteps");
        m_num_inference_steps = num_inference_steps;
        const auto full =
            spaced_timesteps(m_config.spacing, m_config.betas.num_train_timesteps, num_inference_steps, m_config.steps_offset);
        m_timesteps = slice_from(full, strength_start_index(num_inference_steps, strength), strength);
    }

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t step_index, RandomGenerator&) override {
        const int64_t t = m_timesteps.at(step_index);
        // The step size always uses the un-sliced step count.
        const int64_t t_prev = t - static_cast<int64_t>(m_config.betas.num_train_timesteps / m_num_inference_steps);
        // TRAILING spacing can end in t = -1. The oracle then reads the word before its table, which
        // is zero in practice (checked against its pixels); zero is also the zero-terminal-SNR limit.
        const float alpha_t = t < 0 ? 0.0f : alpha_at(m_alphas_cumprod, t);
        const float alpha_prev = t_prev >= 0 ? alpha_at(m_alphas_cumprod, t_prev) : m_final_alpha_cumprod;
        const float beta_t = 1 - alpha_t;
        const float sqrt_alpha_t = std::sqrt(alpha_t), sqrt_beta_t = std::sqrt(beta_t);
        const float sqrt_alpha_prev = std::sqrt(alpha_prev), sqrt_one_minus_prev = std::sqrt(1 - alpha_prev);

        StepResult result;
        result.latent.resize(count);
        for (size_t i = 0; i < count; ++i) {
            const float eps_in = noise_pred[i], x = latent[i];
            float x0, eps;
            switch (m_config.prediction) {
                case PredictionType::Epsilon:
                    x0 = (x - sqrt_beta_t * eps_in) / sqrt_alpha_t;
                    eps = eps_in;
                    break;
                case PredictionType::Sample:
                    x0 = eps_in;
                    eps = (x - sqrt_alpha_t * x0) / sqrt_beta_t;
                    break;
                default:  // v_prediction
                    x0 = sqrt_alpha_t * x - sqrt_beta_t * eps_in;
                    eps = sqrt_alpha_t * eps_in + sqrt_beta_t * x;
                    break;
            }
            const float direction = sqrt_one_minus_prev * eps;
            result.latent[i] = sqrt_alpha_prev * x0 + direction;
        }
        return result;
    }

private:
    DiscreteScheduleConfig m_config;
};

}  // namespace

std::unique_ptr<Scheduler> make_ddim(const ConfigReader& reader) { return std::make_unique<DDIMScheduler>(reader); }

}  // namespace detail
}  // namespace ovd
