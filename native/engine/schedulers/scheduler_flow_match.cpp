// FlowMatchEulerDiscrete for SD3 (static shift) and FLUX (resolution-dependent shift).
// Timesteps are floats; the model gets sigma * num_train_timesteps (see docs).
#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "schedulers/scheduler.hpp"

namespace ovd {
namespace detail {
namespace {

class FlowMatchEulerDiscreteScheduler final : public Scheduler {
public:
    explicit FlowMatchEulerDiscreteScheduler(const ConfigReader& reader)
        : m_num_train_timesteps(reader.get<int32_t>("num_train_timesteps", 1000)),
          m_shift(reader.get<float>("shift", 1.0f)),
          m_dynamic_shifting(reader.get<bool>("use_dynamic_shifting", false)),
          m_base_shift(reader.get<float>("base_shift", 0.5f)),
          m_max_shift(reader.get<float>("max_shift", 1.15f)),
          m_base_seq_len(reader.get<int32_t>("base_image_seq_len", 256)),
          m_max_seq_len(reader.get<int32_t>("max_image_seq_len", 4096)),
          m_exponential_mu(reader.enum_string("time_shift_type", "linear", {"linear", "exponential"}) == "exponential") {
        if (m_num_train_timesteps <= 0) reader.invalid("num_train_timesteps", "must be positive");
        if (const Json* terminal = reader.find("shift_terminal"); terminal && !terminal->is_null()) {
            m_shift_terminal = reader.get<float>("shift_terminal", 0.0f);
            if (std::abs(1.0f - *m_shift_terminal) <= 1e-6f) reader.invalid("shift_terminal", "must not be 1.0");
        }
        // Training sigmas: t = T..1 (float), sigma = t / T and the static shift in double, stored as float.
        const double shift = m_shift;
        std::vector<float> t =
            linspace<float, float>(1.0f, static_cast<float>(m_num_train_timesteps), static_cast<size_t>(m_num_train_timesteps), true);
        std::reverse(t.begin(), t.end());
        for (float ti : t) {
            double s = static_cast<double>(ti) / m_num_train_timesteps;
            if (!m_dynamic_shifting) s = shift * s / (1.0 + (shift - 1.0) * s);
            m_sigmas.push_back(static_cast<float>(s));
            m_timesteps.push_back(m_sigmas.back() * static_cast<float>(m_num_train_timesteps));
        }
        m_sigma_max = m_sigmas.front();
        m_sigma_min = m_sigmas.back();
    }

    SchedulerType type() const override { return SchedulerType::FlowMatchEulerDiscrete; }

    // SD3: the static shift is applied again on top of the training sigmas, in double (as diffusers does).
    void set_timesteps(size_t num_inference_steps, float strength) override {
        if (m_dynamic_shifting)
            throw std::invalid_argument("FlowMatchEulerDiscrete: use_dynamic_shifting requires set_timesteps(image_seq_len, ...)");
        begin(num_inference_steps, strength);
        const double shift = m_shift, train = m_num_train_timesteps;
        for (double t : linspace<double, double>(m_sigma_max * train, m_sigma_min * train, num_inference_steps, true)) {
            const double sigma = t / train;
            m_sigmas.push_back(static_cast<float>(shift * sigma / (1.0 + (shift - 1.0) * sigma)));
            m_timesteps.push_back(m_sigmas.back() * static_cast<float>(m_num_train_timesteps));
        }
        m_sigmas.push_back(0.0f);
    }

    // FLUX: sigmas 1 .. 1/N, shifted by exp(mu) (dynamic) or the static shift, in float.
    void set_timesteps(size_t image_seq_len, size_t num_inference_steps, float strength) override {
        const double mu = m_exponential_mu ? empirical_mu(image_seq_len, num_inference_steps) : linear_mu(image_seq_len);
        begin(num_inference_steps, strength);
        const double end = 1.0 / static_cast<double>(num_inference_steps);
        for (double s : linspace<double, double>(1.0, end, num_inference_steps, true)) m_sigmas.push_back(static_cast<float>(s));
        if (m_dynamic_shifting) {
            const float exp_mu = static_cast<float>(std::exp(mu));
            for (float& s : m_sigmas) s = exp_mu / (exp_mu + (1.0f / s - 1.0f));
        } else {
            for (float& s : m_sigmas) s = m_shift * s / (1.0f + (m_shift - 1.0f) * s);
        }
        if (m_shift_terminal) {
            // Stretch so the last sigma lands on shift_terminal.
            for (float& s : m_sigmas) s = 1.0f - s;
            const float scale = m_sigmas.back() / (1.0f - *m_shift_terminal);
            for (float& s : m_sigmas) s = 1.0f - s / scale;
        }
        for (float s : m_sigmas) m_timesteps.push_back(s * static_cast<float>(m_num_train_timesteps));
        m_sigmas.push_back(0.0f);
    }

    std::vector<float> float_timesteps() override {
        if (m_strength < 0.0f || m_num_inference_steps == 0) throw std::logic_error("FlowMatch: call set_timesteps first");
        const float steps = static_cast<float>(m_num_inference_steps);
        const float init = std::min(steps * m_strength, steps);
        const size_t start = static_cast<size_t>(std::max(steps - init, 0.0f));
        if (start >= m_timesteps.size())
            throw std::invalid_argument("After adjusting num_inference_steps by strength " + std::to_string(m_strength) +
                                        " no denoising step is left; use a larger strength or more steps");
        m_begin_index = static_cast<int64_t>(start);
        return std::vector<float>(m_timesteps.begin() + static_cast<std::ptrdiff_t>(start), m_timesteps.end());
    }

    float init_noise_sigma() const override { return 1.0f; }
    void scale_model_input(float*, size_t, size_t) override {}

    StepResult step(const float* noise_pred, const float* latent, size_t count, size_t, RandomGenerator&) override {
        if (m_step_index == -1) m_step_index = m_begin_index == -1 ? 0 : m_begin_index;
        const size_t k = static_cast<size_t>(m_step_index);
        if (k + 1 >= m_sigmas.size()) throw std::logic_error("FlowMatch: step index out of range");
        const float sigma_diff = m_sigmas[k + 1] - m_sigmas[k];
        StepResult result;
        result.latent.resize(count);
        for (size_t i = 0; i < count; ++i) result.latent[i] = latent[i] + sigma_diff * noise_pred[i];
        ++m_step_index;
        return result;
    }

    void add_noise(float*, const float*, size_t, int64_t) const override {
        throw std::logic_error("FlowMatchEulerDiscrete has no add_noise; use scale_noise");
    }

    void scale_noise(float* sample, const float* noise, size_t count, float timestep) override {
        if (!(timestep > 0)) throw std::invalid_argument("FlowMatch scale_noise: timestep must be positive");
        size_t index;
        if (m_begin_index == -1) {
            // The oracle caches this lookup table on first use and never refreshes it.
            if (m_schedule_timesteps.empty()) m_schedule_timesteps = m_timesteps;
            auto it = std::find(m_schedule_timesteps.begin(), m_schedule_timesteps.end(), timestep);
            if (it == m_schedule_timesteps.end())
                throw std::invalid_argument("Failed to find index for timestep " + std::to_string(timestep));
            index = static_cast<size_t>(it - m_schedule_timesteps.begin());
        } else {
            index = static_cast<size_t>(m_step_index != -1 ? m_step_index : m_begin_index);
        }
        const float sigma = m_sigmas.at(index);
        for (size_t i = 0; i < count; ++i) sample[i] = sigma * noise[i] + (1.0f - sigma) * sample[i];
    }

private:
    int32_t m_num_train_timesteps;
    float m_shift;
    bool m_dynamic_shifting;
    float m_base_shift, m_max_shift;
    int32_t m_base_seq_len, m_max_seq_len;
    bool m_exponential_mu;
    std::optional<float> m_shift_terminal;

    std::vector<float> m_sigmas, m_timesteps, m_schedule_timesteps;
    float m_sigma_max = 1.0f, m_sigma_min = 0.0f;
    float m_strength = -1.0f;
    size_t m_num_inference_steps = 0;
    int64_t m_step_index = -1, m_begin_index = -1;

    void begin(size_t num_inference_steps, float strength) {
        if (num_inference_steps == 0) throw std::invalid_argument("num_inference_steps must be positive");
        m_num_inference_steps = num_inference_steps;
        m_strength = strength;
        m_sigmas.clear();
        m_timesteps.clear();
        m_step_index = m_begin_index = -1;
    }

    // mu grows linearly with the number of image tokens (FLUX.1), in double.
    double linear_mu(size_t image_seq_len) const {
        const double base_len = m_base_seq_len, max_len = m_max_seq_len;
        const double m = (static_cast<double>(m_max_shift) - m_base_shift) / (max_len - base_len);
        const double b = m_base_shift - m * base_len;
        return static_cast<double>(image_seq_len) * m + b;
    }

    // Empirical fit used by FLUX.2 (time_shift_type "exponential"), in double.
    static double empirical_mu(size_t image_seq_len, size_t num_steps) {
        const double a1 = 8.73809524e-05, b1 = 1.89833333, a2 = 0.00016927, b2 = 0.45666666;
        const double len = static_cast<double>(image_seq_len);
        const double mu_200 = a2 * len + b2;
        if (image_seq_len > 4300) return mu_200;
        const double mu_10 = a1 * len + b1;
        const double a = (mu_200 - mu_10) / 190.0;
        const double b = mu_200 - 200.0 * a;
        return a * static_cast<double>(num_steps) + b;
    }
};

}  // namespace

std::unique_ptr<Scheduler> make_flow_match_euler_discrete(const ConfigReader& reader) {
    return std::make_unique<FlowMatchEulerDiscreteScheduler>(reader);
}

}  // namespace detail
}  // namespace ovd
