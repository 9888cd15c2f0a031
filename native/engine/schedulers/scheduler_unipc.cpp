// UniPC (Zhao et al., arXiv 2302.04867), order 2 with the B(h) = expm1(-h) variant ("bh2") on x0 predictions:
// each step first corrects the previous step's result with the new model output (UniC), then predicts the
// next point (UniP); the corrector costs no extra denoiser call. openvino_genai has no such scheduler;
// diffusers' UniPCMultistepScheduler with its defaults is the reference.
#include <algorithm>
#include <cmath>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class UniPCMultistepScheduler final : public Scheduler {
public:
    explicit UniPCMultistepScheduler(const ConfigReader& reader) : m_schedule(reader, "UniPC") {
        if (reader.get<size_t>("solver_order", 2) != 2) reader.invalid("solver_order", "only 2 is supported");
        if (!reader.get<bool>("predict_x0", true)) reader.invalid("predict_x0", "only true is supported");
        if (reader.enum_string("solver_type", "bh2", {"bh1", "bh2"}) != "bh2") reader.invalid("solver_type", "only 'bh2' is supported");
        if (!reader.get<bool>("lower_order_final", true)) reader.invalid("lower_order_final", "only true is supported");
        if (!reader.get<std::vector<float>>("disable_corrector", {}).empty())
            reader.invalid("disable_corrector", "the corrector runs on every step");
        if (reader.get<bool>("use_karras_sigmas", false) || reader.get<bool>("use_exponential_sigmas", false))
            reader.invalid("use_karras_sigmas", "UNIPC runs on the timesteps' own sigmas");
    }

    SchedulerType type() const override { return SchedulerType::UniPC; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        m_schedule.set_timesteps(num_inference_steps, strength, MultistepSchedule::Sigmas::FromTimesteps);
        m_x0_history.clear();
        m_last_sample.clear();
        m_last_order = 0;
    }

    std::vector<int64_t> timesteps() const override { return m_schedule.timesteps; }
    bool completes_step(size_t) const override { return true; }
    float init_noise_sigma() const override { return 1.0f; }
    void scale_model_input(float*, size_t, size_t) override {}

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t, RandomGenerator&) override {
        const size_t k = m_schedule.index;
        const std::vector<float>& sigmas = m_schedule.sigmas;
        if (k + 1 >= sigmas.size()) throw std::logic_error("UniPC stepped past its last timestep");
        StepResult result;
        result.denoised.resize(count);
        m_schedule.predict_x0(noise_pred, latent, count, result.denoised.data());
        const std::vector<float>& x0 = result.denoised;

        // UniC: redo the previous step from its start with this model output as well.
        std::vector<float> sample(latent, latent + count);
        if (!m_last_sample.empty()) {
            const VpPoint t(sigmas[k]), s0(sigmas[k - 1]);
            const double h = t.lambda - s0.lambda;
            const Coefficients co(h, m_last_order == 2 ? (VpPoint(sigmas[k - 2]).lambda - s0.lambda) / h : 0.0, m_last_order, true);
            const std::vector<float>& m0 = m_x0_history[0];
            const float a = static_cast<float>(t.sigma / s0.sigma), b = static_cast<float>(t.alpha * co.h_phi_1);
            const float c = static_cast<float>(t.alpha * co.b_h);
            const float rho_history = static_cast<float>(co.rho_history), rho_new = static_cast<float>(co.rho_new);
            const float inv_rk = static_cast<float>(1 / co.rk);
            for (size_t i = 0; i < count; ++i) {
                float correction = rho_new * (x0[i] - m0[i]);
                if (m_last_order == 2) correction = rho_history * ((m_x0_history[1][i] - m0[i]) * inv_rk) + correction;
                sample[i] = (a * m_last_sample[i] - b * m0[i]) - c * correction;
            }
        }
        m_x0_history.insert(m_x0_history.begin(), x0);
        if (m_x0_history.size() > 2) m_x0_history.pop_back();

        // UniP: order 2 once there is a previous x0, first order at the very end.
        const size_t remaining = m_schedule.steps_in_schedule() - k;
        const int order = static_cast<int>(std::min<size_t>({2, remaining, m_x0_history.size()}));
        const VpPoint t(sigmas[k + 1]), s0(sigmas[k]);
        const double h = t.lambda - s0.lambda;
        const Coefficients co(h, order == 2 ? (VpPoint(sigmas[k - 1]).lambda - s0.lambda) / h : 0.0, order, false);
        const float a = static_cast<float>(t.sigma / s0.sigma), b = static_cast<float>(t.alpha * co.h_phi_1);
        const float c = static_cast<float>(t.alpha * co.b_h * 0.5), inv_rk = static_cast<float>(1 / co.rk);
        result.latent.resize(count);
        for (size_t i = 0; i < count; ++i) {
            float x = a * sample[i] - b * x0[i];
            if (order == 2) x -= c * ((m_x0_history[1][i] - x0[i]) * inv_rk);
            result.latent[i] = x;
        }
        m_last_sample = std::move(sample);
        m_last_order = order;
        ++m_schedule.index;
        const bool last = m_schedule.index == m_schedule.steps_in_schedule();
        result.has_denoised = !last;  // x0 previews every step; the last step's latent is the result
        if (last) result.denoised.clear();
        return result;
    }

    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const override {
        m_schedule.add_noise(init_latent, noise, count, timestep);
    }

private:
    // The step's scalars: hh = -h, h_phi_1 = expm1(hh), B(h) = expm1(hh); for the corrector of order 2 the
    // weights solve [[1, 1], [rk, 1]] rho = [b1, b2] with b_i from the phi functions; order 1 and the
    // predictor use rho = 1/2.
    struct Coefficients {
        double h_phi_1, b_h, rk, rho_history = 0.5, rho_new = 0.5;
        Coefficients(double h, double rk_in, int order, bool corrector) : rk(order == 2 ? rk_in : 1.0) {
            const double hh = -h;
            h_phi_1 = std::expm1(hh);
            b_h = std::expm1(hh);
            if (corrector && order == 2) {
                const double phi_1 = h_phi_1 / hh - 1;
                const double phi_2 = phi_1 / hh - 0.5;
                const double b1 = phi_1 / b_h, b2 = phi_2 * 2 / b_h;
                rho_history = (b1 - b2) / (1 - rk);
                rho_new = b1 - rho_history;
            }
        }
    };

    MultistepSchedule m_schedule;
    std::vector<std::vector<float>> m_x0_history;  // newest first, at most 2
    std::vector<float> m_last_sample;              // the previous predictor's start (empty before the first step)
    int m_last_order = 0;
};

}  // namespace

std::unique_ptr<Scheduler> make_unipc_multistep(const ConfigReader& reader) { return std::make_unique<UniPCMultistepScheduler>(reader); }

}  // namespace detail
}  // namespace ovd
