// DPM-Solver++ 2M (Lu et al., arXiv 2211.01095): a second-order multistep solver on x0 predictions in log-SNR
// time, in its deterministic form or the SDE form that adds fresh noise on every step (like EulerAncestral,
// a full noise tensor per step, including the last). openvino_genai has no such scheduler; diffusers'
// DPMSolverMultistepScheduler (algorithm_type dpmsolver++ / sde-dpmsolver++, solver_type midpoint) is the reference.
#include <cmath>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

struct Variant {
    bool sde;
    MultistepSchedule::Sigmas sigmas;
};

Variant variant_of(SchedulerType type) {
    using S = MultistepSchedule::Sigmas;
    switch (type) {
        case SchedulerType::DPMSolverPP2MKarras: return {false, S::Karras};
        case SchedulerType::DPMSolverPP2MExponential: return {false, S::Exponential};
        case SchedulerType::DPMSolverPP2MSDE: return {true, S::FromTimesteps};
        case SchedulerType::DPMSolverPP2MSDEKarras: return {true, S::Karras};
        case SchedulerType::DPMSolverPP2MSDEExponential: return {true, S::Exponential};
        default: return {false, S::FromTimesteps};
    }
}

class DPMSolverMultistepScheduler final : public Scheduler {
public:
    DPMSolverMultistepScheduler(const ConfigReader& reader, SchedulerType type)
        : m_type(type),
          m_variant(variant_of(type)),
          m_schedule(reader, "DPM-Solver++"),
          m_lower_order_final(reader.get<bool>("lower_order_final", true)) {}

    SchedulerType type() const override { return m_type; }

    void set_timesteps(size_t num_inference_steps, float strength) override {
        m_schedule.set_timesteps(num_inference_steps, strength, m_variant.sigmas);
        m_previous_x0.clear();
    }

    std::vector<int64_t> timesteps() const override { return m_schedule.timesteps; }
    // Karras grids can repeat a timestep near t = 0; every call is still a step of its own.
    bool completes_step(size_t) const override { return true; }
    float init_noise_sigma() const override { return 1.0f; }
    void scale_model_input(float*, size_t, size_t) override {}

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t, RandomGenerator& rng) override {
        const size_t k = m_schedule.index;
        if (k + 1 >= m_schedule.sigmas.size()) throw std::logic_error("DPM-Solver++ stepped past its last timestep");
        StepResult result;
        result.denoised.resize(count);
        m_schedule.predict_x0(noise_pred, latent, count, result.denoised.data());
        const std::vector<float>& x0 = result.denoised;

        const bool last = k + 1 == m_schedule.steps_in_schedule();
        // The last step is first order when it lands on sigma 0 (or on short runs), as in the reference.
        const bool first_order = m_previous_x0.empty() ||
                                 (last && ((m_lower_order_final && m_schedule.steps_in_schedule() < 15) || m_schedule.final_sigma_zero));
        const VpPoint t(m_schedule.sigmas[k + 1]), s0(m_schedule.sigmas[k]);
        const double h = t.lambda - s0.lambda;
        // Per element: x_t = a x + b D0 + c D1 (+ n noise), D1 = (m0 - m1) / r0.
        double a, b, c = 0, n = 0, r0 = 1;
        if (m_variant.sde) {
            a = t.sigma / s0.sigma * std::exp(-h);
            b = t.alpha * (1 - std::exp(-2 * h));
            n = t.sigma * std::sqrt(1 - std::exp(-2 * h));
        } else {
            a = t.sigma / s0.sigma;
            b = -t.alpha * std::expm1(-h);
        }
        if (!first_order) {
            const VpPoint s1(m_schedule.sigmas[k - 1]);
            r0 = (s0.lambda - s1.lambda) / h;
            c = 0.5 * b;
        }
        std::vector<float> noise;
        if (m_variant.sde) {
            noise.resize(count);
            rng.fill_normal(noise.data(), count);
        }
        const float fa = static_cast<float>(a), fb = static_cast<float>(b), fc = static_cast<float>(c), fn = static_cast<float>(n);
        const float inv_r0 = static_cast<float>(1 / r0);
        result.latent.resize(count);
        for (size_t i = 0; i < count; ++i) {
            float x = fa * latent[i] + fb * x0[i];
            if (!first_order) x += fc * (inv_r0 * (x0[i] - m_previous_x0[i]));
            if (m_variant.sde) x += fn * noise[i];
            result.latent[i] = x;
        }
        m_previous_x0 = x0;
        ++m_schedule.index;
        // x0 is the preview of every step but the last, whose latent is the result itself.
        result.has_denoised = !last;
        if (last) result.denoised.clear();
        return result;
    }

    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const override {
        m_schedule.add_noise(init_latent, noise, count, timestep);
    }

private:
    SchedulerType m_type;
    Variant m_variant;
    MultistepSchedule m_schedule;
    bool m_lower_order_final;
    std::vector<float> m_previous_x0;  // the previous step's x0 (empty before the first step)
};

}  // namespace

SchedulerType dpm_solver_variant_of(const ConfigReader& reader) {
    const std::string algorithm =
        reader.enum_string("algorithm_type", "dpmsolver++", {"dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"});
    if (algorithm != "dpmsolver++" && algorithm != "sde-dpmsolver++")
        reader.invalid("algorithm_type", "'" + algorithm + "' is not supported (use 'dpmsolver++' or 'sde-dpmsolver++')");
    if (reader.get<size_t>("solver_order", 2) != 2) reader.invalid("solver_order", "only 2 is supported");
    if (reader.enum_string("solver_type", "midpoint", {"midpoint", "heun"}) != "midpoint")
        reader.invalid("solver_type", "only 'midpoint' is supported");
    if (reader.get<bool>("euler_at_final", false)) reader.invalid("euler_at_final", "true is not supported");
    const bool karras = reader.get<bool>("use_karras_sigmas", false), exponential = reader.get<bool>("use_exponential_sigmas", false);
    if (karras && exponential) reader.invalid("use_exponential_sigmas", "cannot be combined with use_karras_sigmas");
    const bool sde = algorithm == "sde-dpmsolver++";
    if (karras) return sde ? SchedulerType::DPMSolverPP2MSDEKarras : SchedulerType::DPMSolverPP2MKarras;
    if (exponential) return sde ? SchedulerType::DPMSolverPP2MSDEExponential : SchedulerType::DPMSolverPP2MExponential;
    return sde ? SchedulerType::DPMSolverPP2MSDE : SchedulerType::DPMSolverPP2M;
}

std::unique_ptr<Scheduler> make_dpm_solver_multistep(const ConfigReader& reader, SchedulerType variant) {
    return std::make_unique<DPMSolverMultistepScheduler>(reader, variant);
}

}  // namespace detail
}  // namespace ovd
