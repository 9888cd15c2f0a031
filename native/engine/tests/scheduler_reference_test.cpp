// The solvers openvino_genai lacks (DPM-Solver++ 2M and variants, UniPC, Heun) against diffusers, their reference:
// test/fixtures/scheduler-trajectories.json holds diffusers' timesteps and every latent of runs driven by a fixed
// stand-in denoiser (scripts/fixtures/scheduler_trajectories.py). Each case is replayed here through our scheduler
// with the same denoiser and, for the SDE variants, the recorded noise; every latent must agree to 1e-5 relative
// (max |ours - reference| over the tensor, divided by max |reference|).
//
// Built and run by test/engine-math.test.js: scheduler_reference_test <trajectories.json>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/json.hpp"
#include "base/random_generator.hpp"
#include "schedulers/scheduler.hpp"

using namespace ovd;

namespace {

constexpr double kTolerance = 1e-5;

// Hands out the recorded per-step noise in order instead of drawing it.
class ReplayNoise : public RandomGenerator {
public:
    explicit ReplayNoise(std::vector<std::vector<float>> draws) : m_draws(std::move(draws)) {}
    void fill_normal(float* dst, size_t count) override {
        if (m_next >= m_draws.size() || m_draws[m_next].size() != count) throw std::runtime_error("unexpected noise draw");
        std::copy(m_draws[m_next].begin(), m_draws[m_next].end(), dst);
        ++m_next;
    }
    size_t used() const { return m_next; }

private:
    std::vector<std::vector<float>> m_draws;
    size_t m_next = 0;
};

std::vector<float> floats(const Json& array) {
    std::vector<float> out;
    for (size_t i = 0; i < array.size(); ++i) out.push_back(static_cast<float>(array.at(i).as_double()));
    return out;
}

double relative_error(const std::vector<float>& ours, const std::vector<float>& reference) {
    if (ours.size() != reference.size()) return INFINITY;
    double worst = 0, scale = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
        if (!std::isfinite(ours[i])) return INFINITY;
        worst = std::max(worst, std::fabs(static_cast<double>(ours[i]) - reference[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(reference[i])));
    }
    return scale > 0 ? worst / scale : worst;
}

// The stand-in denoiser of the fixture script.
std::vector<float> model_output(const std::vector<float>& input, int64_t timestep) {
    std::vector<float> out(input.size());
    for (size_t i = 0; i < input.size(); ++i)
        out[i] = static_cast<float>(0.6 * std::tanh(static_cast<double>(input[i])) +
                                    0.3 * std::sin(0.013 * static_cast<double>(timestep) + 0.7 * static_cast<double>(i)));
    return out;
}

// Returns the largest relative error of the case, or infinity when the run does not line up with the reference.
double replay(const Json& c, std::string& problem) {
    auto scheduler = create_scheduler(c.at("config"), parse_scheduler_type(c.at("scheduler").as_string()), "trajectory case");
    const size_t steps = static_cast<size_t>(c.at("steps").as_int());
    const float strength = static_cast<float>(c.at("strength").as_double());
    scheduler->set_timesteps(steps, strength);
    const std::vector<int64_t> timesteps = scheduler->timesteps();
    const Json& expected_timesteps = c.at("timesteps");
    std::vector<int64_t> expected;
    for (size_t i = 0; i < expected_timesteps.size(); ++i) expected.push_back(expected_timesteps.at(i).as_int());
    if (timesteps != expected) {
        problem = "timesteps differ";
        return INFINITY;
    }
    double worst = std::fabs(scheduler->init_noise_sigma() - c.at("init_noise_sigma").as_double()) / c.at("init_noise_sigma").as_double();

    const std::vector<float> noise = floats(c.at("noise"));
    std::vector<float> latent = noise;
    if (c.at("image").is_null()) {
        for (float& v : latent) v *= scheduler->init_noise_sigma();
    } else {
        latent = floats(c.at("image"));
        scheduler->add_noise(latent.data(), noise.data(), latent.size(), timesteps.front());
    }
    worst = std::max(worst, relative_error(latent, floats(c.at("start"))));

    std::vector<std::vector<float>> draws;
    for (size_t i = 0; i < c.at("step_noise").size(); ++i) draws.push_back(floats(c.at("step_noise").at(i)));
    ReplayNoise rng(draws);
    const Json& latents = c.at("latents");
    size_t completed = 0;
    for (size_t k = 0; k < timesteps.size(); ++k) {
        std::vector<float> input = latent;
        scheduler->scale_model_input(input.data(), input.size(), k);
        const std::vector<float> output = model_output(input, timesteps[k]);
        const StepResult r = scheduler->step(output.data(), latent.data(), latent.size(), k, rng);
        latent = r.latent;
        const double error = relative_error(latent, floats(latents.at(k)));
        if (error > kTolerance && problem.empty()) problem = "first off at call " + std::to_string(k);
        worst = std::max(worst, error);
        completed += scheduler->completes_step(k) ? 1 : 0;
        // x0 previews every call but the last; the last call's latent is the result.
        if (r.has_denoised == (k + 1 == timesteps.size()) || (r.has_denoised && r.denoised.size() != latent.size())) {
            problem = "denoised at call " + std::to_string(k);
            return INFINITY;
        }
    }
    // Steps as the caller counts them: the steps asked for after strength, whatever the calls per step.
    const size_t expected_steps = std::min(steps, static_cast<size_t>(static_cast<float>(steps) * strength));
    if (completed != expected_steps) {
        problem = std::to_string(completed) + " steps completed, not " + std::to_string(expected_steps);
        return INFINITY;
    }
    if (rng.used() != draws.size()) {
        problem = "used " + std::to_string(rng.used()) + " of " + std::to_string(draws.size()) + " noise draws";
        return INFINITY;
    }
    return worst;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::printf("usage: scheduler_reference_test <scheduler-trajectories.json>\n");
        return 2;
    }
    const Json doc = Json::parse_file(argv[1]);
    const Json& cases = doc.at("cases");
    int passed = 0, failed = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const Json& c = cases.at(i);
        std::string problem;
        double error;
        try {
            error = replay(c, problem);
        } catch (const std::exception& e) {
            error = INFINITY;
            problem = e.what();
        }
        const bool ok = error <= kTolerance;
        (ok ? passed : failed)++;
        std::printf("%-4s %-26s steps %2lld strength %.2f  max relative error %.3g %s\n", ok ? "ok" : "FAIL",
                    c.at("scheduler").as_string().c_str(), static_cast<long long>(c.at("steps").as_int()), c.at("strength").as_double(),
                    error, problem.c_str());
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
