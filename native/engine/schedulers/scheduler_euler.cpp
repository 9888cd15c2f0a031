// EulerDiscrete (gamma = 0). Returns `denoised` (x0), which the pipeline decodes (see docs).
#include <cmath>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class EulerDiscreteScheduler final : public EulerFamilyScheduler {
public:
    explicit EulerDiscreteScheduler(const ConfigReader& reader)
        : EulerFamilyScheduler(reader, BetaSchedule::ScaledLinear, false),
          m_log_linear(reader.enum_string("interpolation_type", "linear", {"linear", "log_linear"}) == "log_linear"),
          m_final_sigma_min(reader.enum_string("final_sigmas_type", "zero", {"zero", "sigma_min"}) == "sigma_min") {
        for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"})
            if (reader.get<bool>(key, false)) reader.invalid(key, "true is not supported by EulerDiscrete");
        const bool continuous = reader.enum_string("timestep_type", "discrete", {"discrete", "continuous"}) == "continuous";
        if (continuous && m_prediction == PredictionType::VPrediction)
            reader.invalid("timestep_type", "'continuous' together with prediction_type 'v_prediction' is not supported");
    }

    SchedulerType type() const override { return SchedulerType::EulerDiscrete; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        m_state.set_timesteps(m_spacing, num_inference_steps, m_steps_offset, strength, m_log_linear, m_final_sigma_min);
    }

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t, RandomGenerator&) override {
        const size_t k = m_state.current_index();
        const float sigma = m_state.sigmas[k];
        const float sigma_hat = sigma;  // gamma = 0
        const float dt = m_state.sigmas[k + 1] - sigma_hat;

        StepResult result;
        result.has_denoised = true;
        result.latent.resize(count);
        result.denoised.resize(count);
        for (size_t i = 0; i < count; ++i) {
            float x0;
            switch (m_prediction) {
                case PredictionType::Epsilon: x0 = latent[i] - noise_pred[i] * sigma_hat; break;
                case PredictionType::Sample: x0 = noise_pred[i]; break;
                default: x0 = euler_v_prediction_x0(noise_pred[i], latent[i], sigma); break;
            }
            result.denoised[i] = x0;
            result.latent[i] = ((latent[i] - x0) / sigma_hat) * dt + latent[i];
        }
        ++m_state.step_index;
        return result;
    }

private:
    bool m_log_linear, m_final_sigma_min;
};

}  // namespace

std::unique_ptr<Scheduler> make_euler_discrete(const ConfigReader& reader) { return std::make_unique<EulerDiscreteScheduler>(reader); }

}  // namespace detail
}  // namespace ovd
