// EulerAncestralDiscrete: Euler step to sigma_down plus fresh noise scaled by sigma_up.
// Draws a full noise tensor on every step, including the last one (see docs, RNG order).
#include <cmath>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class EulerAncestralDiscreteScheduler final : public EulerFamilyScheduler {
public:
    explicit EulerAncestralDiscreteScheduler(const ConfigReader& reader) : EulerFamilyScheduler(reader, BetaSchedule::Linear, true) {
        if (m_prediction == PredictionType::Sample)
            reader.invalid("prediction_type", "'sample' is not supported by EulerAncestralDiscrete (use 'epsilon' or 'v_prediction')");
    }

    SchedulerType type() const override { return SchedulerType::EulerAncestralDiscrete; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        m_state.set_timesteps(m_spacing, num_inference_steps, m_steps_offset, strength, false, false);
    }

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t, RandomGenerator& rng) override {
        const size_t k = m_state.current_index();
        const float sigma = m_state.sigmas[k];
        const double from_sq = std::pow(static_cast<double>(sigma), 2);
        const double to_sq = std::pow(static_cast<double>(m_state.sigmas[k + 1]), 2);
        const float sigma_up = static_cast<float>(std::sqrt(to_sq * (from_sq - to_sq) / from_sq));
        const float sigma_down = static_cast<float>(std::sqrt(to_sq - std::pow(static_cast<double>(sigma_up), 2)));
        const float dt = sigma_down - sigma;

        StepResult result;
        result.has_denoised = true;
        result.latent.resize(count);
        result.denoised.resize(count);
        for (size_t i = 0; i < count; ++i)
            result.denoised[i] = m_prediction == PredictionType::Epsilon ? latent[i] - sigma * noise_pred[i]
                                                                         : euler_v_prediction_x0(noise_pred[i], latent[i], sigma);
        std::vector<float> noise(count);
        rng.fill_normal(noise.data(), count);
        for (size_t i = 0; i < count; ++i) {
            const float derivative = (latent[i] - result.denoised[i]) / sigma;
            result.latent[i] = (latent[i] + derivative * dt) + noise[i] * sigma_up;
        }
        ++m_state.step_index;
        return result;
    }
};

}  // namespace

std::unique_ptr<Scheduler> make_euler_ancestral_discrete(const ConfigReader& reader) {
    return std::make_unique<EulerAncestralDiscreteScheduler>(reader);
}

}  // namespace detail
}  // namespace ovd
