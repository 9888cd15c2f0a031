// Heun's method (Karras et al., arXiv 2206.00364, Algorithm 1 without churn): every step is an Euler step to the
// next sigma, then a second denoiser call there averages the two slopes, so a run of N steps makes 2N - 1 calls
// (the last step, to sigma 0, is Euler only). timesteps() lists every call: t0, t1, t1, t2, t2, ...; the calls
// that finish a step are the correctors and the last one. openvino_genai has no such scheduler; diffusers'
// HeunDiscreteScheduler is the reference. Its linspace timesteps are fractional; exported UNets take integer
// timesteps, so the UNet sees them rounded (the sigmas stay exact).
#include <algorithm>
#include <cmath>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class HeunDiscreteScheduler final : public Scheduler {
public:
    explicit HeunDiscreteScheduler(const ConfigReader& reader)
        : m_alphas_cumprod(diffusers_alphas_cumprod(reader, BetaSchedule::Linear, false)),
          m_prediction(reader.prediction_type(PredictionType::Epsilon)),
          m_spacing(reader.timestep_spacing(TimestepSpacing::Linspace)),
          m_steps_offset(reader.get<size_t>("steps_offset", 0)) {
        for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "clip_sample"})
            if (reader.get<bool>(key, false)) reader.invalid(key, "true is not supported by HEUN");
    }

    SchedulerType type() const override { return SchedulerType::Heun; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        if (num_inference_steps == 0) throw std::invalid_argument("num_inference_steps must be positive");
        const size_t train = m_alphas_cumprod.size(), n = num_inference_steps;
        std::vector<double> points;  // one per step, descending (float32 values, as the reference keeps them)
        switch (m_spacing) {
            case TimestepSpacing::Linspace:
                for (double t : numpy_linspace(0, static_cast<double>(train - 1), n)) points.insert(points.begin(), static_cast<float>(t));
                break;
            case TimestepSpacing::Leading:
                for (size_t i = n; i-- > 0;) points.push_back(static_cast<double>(i * (train / n) + m_steps_offset));
                break;
            case TimestepSpacing::Trailing: {
                const double ratio = static_cast<double>(train) / static_cast<double>(n);
                const size_t count = static_cast<size_t>(std::ceil(static_cast<double>(train) / ratio));
                for (size_t i = 0; i < count; ++i)
                    points.push_back(round_half_even(static_cast<double>(train) - static_cast<double>(i) * ratio) - 1);
                break;
            }
        }
        const std::vector<float> table = sigma_table(m_alphas_cumprod);
        // Every point but the first is visited twice (predictor, then corrector); the final sigma is 0.
        m_schedule_timesteps.clear();
        m_sigmas.clear();
        for (size_t i = 0; i < points.size(); ++i) {
            const int64_t t = static_cast<int64_t>(round_half_even(points[i]));
            const float sigma = static_cast<float>(interp_table(points[i], table));
            for (int repeat = i == 0 ? 1 : 2; repeat > 0; --repeat) {
                m_schedule_timesteps.push_back(t);
                m_sigmas.push_back(sigma);
            }
        }
        m_sigmas.push_back(0.0f);
        m_max_sigma = *std::max_element(m_sigmas.begin(), m_sigmas.end());
        m_begin = 2 * strength_start_index(n, strength);
        m_timesteps = slice_from(m_schedule_timesteps, m_begin, strength);
        m_index = m_begin;
        m_pending.clear();
    }

    std::vector<int64_t> timesteps() const override { return m_timesteps; }
    bool completes_step(size_t call_index) const override {
        const size_t at = m_begin + call_index;
        return at % 2 == 1 || at + 1 == m_schedule_timesteps.size();
    }

    float init_noise_sigma() const override {
        if (m_spacing != TimestepSpacing::Leading) return m_max_sigma;
        return std::sqrt(m_max_sigma * m_max_sigma + 1);
    }

    void scale_model_input(float* latent, size_t count, size_t) override {
        const float sigma = m_sigmas.at(m_index);
        const float norm = std::sqrt(sigma * sigma + 1);
        for (size_t i = 0; i < count; ++i) latent[i] /= norm;
    }

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t, RandomGenerator&) override {
        if (m_index + 1 >= m_sigmas.size()) throw std::logic_error("Heun stepped past its last timestep");
        const bool predictor = m_pending.empty();
        // The predictor evaluates at this call's sigma; the corrector at the sigma the predictor stepped to.
        const float sigma = m_sigmas[m_index];
        StepResult result;
        result.denoised.resize(count);
        result.latent.resize(count);
        for (size_t i = 0; i < count; ++i) {
            switch (m_prediction) {
                case PredictionType::Epsilon: result.denoised[i] = latent[i] - sigma * noise_pred[i]; break;
                case PredictionType::Sample: result.denoised[i] = noise_pred[i]; break;
                case PredictionType::VPrediction:
                    result.denoised[i] = noise_pred[i] * (-sigma / std::sqrt(sigma * sigma + 1)) + latent[i] / (sigma * sigma + 1);
                    break;
            }
        }
        if (predictor) {
            const float dt = m_sigmas[m_index + 1] - sigma;
            m_pending.resize(2 * count);  // [slope | start]
            for (size_t i = 0; i < count; ++i) {
                const float slope = (latent[i] - result.denoised[i]) / sigma;
                m_pending[i] = slope;
                m_pending[count + i] = latent[i];
                result.latent[i] = latent[i] + slope * dt;
            }
            m_dt = dt;
        } else {
            for (size_t i = 0; i < count; ++i) {
                const float slope = (m_pending[i] + (latent[i] - result.denoised[i]) / sigma) / 2;
                result.latent[i] = m_pending[count + i] + slope * m_dt;
            }
            m_pending.clear();
        }
        ++m_index;
        const bool last = m_index + 1 == m_sigmas.size();
        if (last) m_pending.clear();  // the final Euler step has no corrector
        result.has_denoised = !last;
        if (last) result.denoised.clear();
        return result;
    }

    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const override {
        const size_t at = m_index < m_schedule_timesteps.size() && m_schedule_timesteps[m_index] == timestep
                              ? m_index
                              : index_of_timestep(m_schedule_timesteps, timestep);
        for (size_t i = 0; i < count; ++i) init_latent[i] = init_latent[i] + noise[i] * m_sigmas[at];
    }

private:
    std::vector<float> m_alphas_cumprod;
    PredictionType m_prediction;
    TimestepSpacing m_spacing;
    size_t m_steps_offset;
    std::vector<int64_t> m_schedule_timesteps, m_timesteps;
    std::vector<float> m_sigmas;  // per call, then 0
    float m_max_sigma = 1.0f;
    size_t m_begin = 0, m_index = 0;
    std::vector<float> m_pending;  // the predictor's slope and start, until its corrector
    float m_dt = 0;
};

}  // namespace

std::unique_ptr<Scheduler> make_heun_discrete(const ConfigReader& reader) { return std::make_unique<HeunDiscreteScheduler>(reader); }

}  // namespace detail
}  // namespace ovd
