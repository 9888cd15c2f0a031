// PNDM in its PLMS form only (skip_prk_steps must be true). The second-to-last timestep is repeated,
// so N inference steps make N + 1 model calls (see docs).
#include <cmath>
#include <stdexcept>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class PNDMScheduler final : public AlphaScheduleScheduler {
public:
    explicit PNDMScheduler(const ConfigReader& reader)
        : AlphaScheduleScheduler(true), m_config(read_discrete_schedule(reader, BetaSchedule::Linear)) {
        if (!reader.get<bool>("skip_prk_steps", false))
            reader.invalid("skip_prk_steps", "false is not supported by PNDM (set \"skip_prk_steps\": true)");
        if (m_config.prediction == PredictionType::Sample)
            reader.invalid("prediction_type", "'sample' is not supported by PNDM (use 'epsilon' or 'v_prediction')");
        m_alphas_cumprod = alphas_cumprod_from_betas(betas_endpoint_false(m_config.betas, reader));
        m_final_alpha_cumprod = reader.get<bool>("set_alpha_to_one", false) ? 1.0f : m_alphas_cumprod[0];
    }

    SchedulerType type() const override { return SchedulerType::PNDM; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        if (num_inference_steps > m_config.betas.num_train_timesteps)
            throw std::invalid_argument("num_inference_steps cannot be larger than num_train_timesteps");
        m_num_inference_steps = num_inference_steps;
        // PLMS order (descending): the second timestep is repeated, e.g. [981, 961, 961, 941, ...].
        std::vector<int64_t> plms =
            spaced_timesteps(m_config.spacing, m_config.betas.num_train_timesteps, num_inference_steps, m_config.steps_offset);
        if (plms.size() > 1) plms.insert(plms.begin() + 1, plms[1]);
        m_timesteps = slice_from(plms, strength_start_index(num_inference_steps, strength), strength);
        m_ets.clear();
        m_counter = 0;
        m_cur_sample.clear();
    }

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t step_index, RandomGenerator&) override {
        if (m_num_inference_steps == 0) throw std::logic_error("PNDM: call set_timesteps before step");
        const int64_t ratio = static_cast<int64_t>(m_config.betas.num_train_timesteps / m_num_inference_steps);
        int64_t t = m_timesteps.at(step_index);
        int64_t t_prev = t - ratio;
        if (m_counter != 1) {
            if (m_ets.size() > 3) m_ets.erase(m_ets.begin(), m_ets.end() - 3);
            m_ets.emplace_back(noise_pred, noise_pred + count);
        } else {
            // The second call repeats the first timestep's target, looking one ratio back.
            t_prev = t;
            t += ratio;
        }

        std::vector<float> eps(noise_pred, noise_pred + count);
        const float* sample = latent;
        const size_t n_ets = m_ets.size();
        if (n_ets == 1 && m_counter == 0) {
            m_cur_sample.assign(latent, latent + count);
        } else if (n_ets == 1 && m_counter == 1) {
            for (size_t i = 0; i < count; ++i) eps[i] = (eps[i] + m_ets[0][i]) / 2.0f;
            sample = m_cur_sample.data();
        } else if (n_ets == 2) {
            const auto &e1 = m_ets[1], &e2 = m_ets[0];
            for (size_t i = 0; i < count; ++i) eps[i] = (3.0f * e1[i] - e2[i]) / 2.0f;
        } else if (n_ets == 3) {
            const auto &e1 = m_ets[2], &e2 = m_ets[1], &e3 = m_ets[0];
            for (size_t i = 0; i < count; ++i) eps[i] = (23.0f * e1[i] - 16.0f * e2[i] + 5.0f * e3[i]) / 12.0f;
        } else if (n_ets == 4) {
            const auto &e1 = m_ets[3], &e2 = m_ets[2], &e3 = m_ets[1], &e4 = m_ets[0];
            for (size_t i = 0; i < count; ++i) eps[i] = (1.0f / 24.0f) * (55.0f * e1[i] - 59.0f * e2[i] + 37.0f * e3[i] - 9.0f * e4[i]);
        } else {
            throw std::logic_error("PNDM: unsupported multistep state");
        }

        StepResult result;
        result.latent = previous_sample(sample, eps, t, t_prev);
        if (n_ets == 1 && m_counter == 1) m_cur_sample.clear();
        ++m_counter;
        return result;
    }

private:
    DiscreteScheduleConfig m_config;
    std::vector<std::vector<float>> m_ets;  // past model outputs, at most 4
    std::vector<float> m_cur_sample;
    size_t m_counter = 0;

    // Formula (9) of the PNDM paper, all in float.
    std::vector<float> previous_sample(const float* sample, std::vector<float>& eps, int64_t t, int64_t t_prev) const {
        const float alpha_t = alpha_at(m_alphas_cumprod, t);
        const float alpha_prev = t_prev >= 0 ? alpha_at(m_alphas_cumprod, t_prev) : m_final_alpha_cumprod;
        const float beta_t = 1 - alpha_t, beta_prev = 1 - alpha_prev;
        const float sample_coeff = std::sqrt(alpha_prev / alpha_t);
        const float denom = alpha_t * std::sqrt(beta_prev) + std::sqrt(alpha_t * beta_t * alpha_prev);
        if (m_config.prediction == PredictionType::VPrediction)
            for (size_t i = 0; i < eps.size(); ++i) eps[i] = std::sqrt(alpha_t) * eps[i] + std::sqrt(beta_t) * sample[i];
        std::vector<float> prev(eps.size());
        for (size_t i = 0; i < eps.size(); ++i) prev[i] = sample_coeff * sample[i] - (alpha_prev - alpha_t) * eps[i] / denom;
        return prev;
    }
};

}  // namespace

std::unique_ptr<Scheduler> make_pndm(const ConfigReader& reader) { return std::make_unique<PNDMScheduler>(reader); }

}  // namespace detail
}  // namespace ovd
