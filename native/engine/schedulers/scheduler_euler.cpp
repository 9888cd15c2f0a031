// EulerDiscrete (gamma = 0). Returns `denoised` (x0), which the pipeline decodes (see docs).
#include <cmath>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class EulerDiscreteScheduler final : public Scheduler {
public:
    explicit EulerDiscreteScheduler(const ConfigReader& reader)
        : m_state(euler_family_alphas(reader, BetaSchedule::ScaledLinear)),
          m_prediction(reader.prediction_type(PredictionType::Epsilon)),
          m_spacing(reader.timestep_spacing(TimestepSpacing::Leading)),
          m_steps_offset(reader.get<size_t>("steps_offset", 0)),
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

    std::vector<int64_t> timesteps() const override { return m_state.timesteps; }

    float init_noise_sigma() const override {
        const float max_sigma = m_state.max_sigma();
        if (m_spacing != TimestepSpacing::Leading) return max_sigma;
        return std::sqrt(max_sigma * max_sigma + 1);  // float here, unlike EulerAncestral
    }

    // Like the oracle, the scheduler's own step counter picks sigma; step_index is not used.
    void scale_model_input(float* latent, size_t count, size_t) override {
        divide_by_sigma_norm(latent, count, m_state.sigmas[m_state.current_index()]);
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

    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const override {
        m_state.add_noise(init_latent, noise, count, timestep);
    }

private:
    EulerState m_state;
    PredictionType m_prediction;
    TimestepSpacing m_spacing;
    size_t m_steps_offset;
    bool m_log_linear, m_final_sigma_min;
};

}  // namespace

std::unique_ptr<Scheduler> make_euler_discrete(const ConfigReader& reader) { return std::make_unique<EulerDiscreteScheduler>(reader); }

}  // namespace detail
}  // namespace ovd
