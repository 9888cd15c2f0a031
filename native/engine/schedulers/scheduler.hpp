// Diffusion schedulers re-implemented to match OpenVINO GenAI bit for bit (see docs, Schedulers).
// Pure C++17: latents are flat float arrays in C order; the caller owns the buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/json.hpp"
#include "base/random_generator.hpp"

namespace ovd {

// The first seven are openvino_genai's; the rest are solvers it lacks, matched against diffusers instead
// (test/fixtures/scheduler-trajectories.json): DPM-Solver++ 2M (ODE or SDE, with the timesteps' own sigmas,
// Karras or exponential ones), UniPC (bh2, order 2) and Heun (two denoiser calls per step).
enum class SchedulerType {
    Auto,
    DDIM,
    EulerDiscrete,
    EulerAncestralDiscrete,
    PNDM,
    LCM,
    FlowMatchEulerDiscrete,
    DPMSolverPP2M,
    DPMSolverPP2MKarras,
    DPMSolverPP2MExponential,
    DPMSolverPP2MSDE,
    DPMSolverPP2MSDEKarras,
    DPMSolverPP2MSDEExponential,
    UniPC,
    Heun,
};

// Accepts the names of scheduler_type_names() (plus "LMS_DISCRETE", an alias of DDIM as in the oracle),
// case-insensitively. Throws std::invalid_argument listing the valid names.
SchedulerType parse_scheduler_type(const std::string& name);
const char* scheduler_type_name(SchedulerType type);  // e.g. "EULER_DISCRETE"
// Every name a call may give, "AUTO" first: the one list lib/parameters.ts mirrors (a test compares them).
std::vector<std::string> scheduler_type_names();
// Flow-matching schedulers run SD3/FLUX; the others UNet models. A model takes the kind its folder ships.
bool is_flow_matching(SchedulerType type);
// The names a model whose folder ships `folder_type` accepts: AUTO and every scheduler of the same kind.
std::vector<std::string> scheduler_names_like(SchedulerType folder_type);
// The same from the folder config's `_class_name`; a class this table does not know gives AUTO alone.
std::vector<std::string> scheduler_names_for_class(const std::string& class_name);
// Maps a scheduler_config.json `_class_name` (e.g. "EulerDiscreteScheduler"); throws std::invalid_argument.
SchedulerType scheduler_type_from_class_name(const std::string& class_name, const std::string& source_name);

struct StepResult {
    std::vector<float> latent;    // x_{t-1}
    std::vector<float> denoised;  // predicted x_0; the pipeline decodes this when present (see docs)
    bool has_denoised = false;
};

class Scheduler {
public:
    virtual ~Scheduler() = default;
    virtual SchedulerType type() const = 0;

    // UNet-family schedulers and SD3's FlowMatch. `strength` < 1 drops the first steps (image2image).
    virtual void set_timesteps(size_t num_inference_steps, float strength) = 0;
    // FLUX: FlowMatch with resolution-dependent shift. Others throw std::logic_error.
    virtual void set_timesteps(size_t image_seq_len, size_t num_inference_steps, float strength);

    // Integer timesteps the UNet is run at, one per step() call (after strength slicing; PNDM repeats one,
    // TRAILING may end in -1 exactly like the oracle). FlowMatch throws.
    virtual std::vector<int64_t> timesteps() const;
    // Whether denoiser call `call_index` (into timesteps()) ends a step of its own. Default: unless the next call
    // repeats its timestep (PNDM's warm-up). Heun's predictor calls and multistep solvers override it.
    virtual bool completes_step(size_t call_index) const;
    // FlowMatch only. Like the oracle it also sets the begin index, so call it once per generate
    // (and again before each scale_noise in blend steps, exactly where the oracle does).
    virtual std::vector<float> float_timesteps();

    virtual float init_noise_sigma() const = 0;  // text2image: latent = noise * init_noise_sigma
    // In place. Euler-family schedulers, like the oracle, use their own step counter (starting at the
    // strength offset) and ignore step_index; the others ignore the call entirely.
    virtual void scale_model_input(float* latent, size_t count, size_t step_index) = 0;
    // One denoising step for step_index into timesteps(). EulerAncestral (every step) and LCM (every step
    // but the last) draw `count` normals from rng, in C order.
    virtual StepResult step(const float* noise_pred, const float* latent, size_t count, size_t step_index, RandomGenerator& rng) = 0;

    // Image2image / inpainting start point and 4-channel inpainting blend: init_latent noised to `timestep`.
    // FlowMatch throws (use scale_noise).
    virtual void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const = 0;
    // FlowMatch only: sample <- sigma * noise + (1 - sigma) * sample, sigma chosen as the oracle does.
    virtual void scale_noise(float* sample, const float* noise, size_t count, float timestep);
};

// Reads scheduler_config.json. With Auto the type comes from `_class_name`. Config errors throw
// std::invalid_argument naming the field, the value and the file; a malformed file throws std::runtime_error.
std::unique_ptr<Scheduler> create_scheduler(const std::string& scheduler_config_json_path, SchedulerType type = SchedulerType::Auto);
std::unique_ptr<Scheduler> create_scheduler(const Json& config, SchedulerType type, const std::string& source_name = "scheduler config");
// A string literal is a path (Json is implicitly constructible from it too).
inline std::unique_ptr<Scheduler> create_scheduler(const char* scheduler_config_json_path, SchedulerType type = SchedulerType::Auto) {
    return create_scheduler(std::string(scheduler_config_json_path), type);
}

// ---- Shared building blocks for the scheduler implementations (not part of the engine API) ----
namespace detail {

enum class BetaSchedule { Linear, ScaledLinear, SquaredCosCapV2 };
enum class PredictionType { Epsilon, Sample, VPrediction };
enum class TimestepSpacing { Linspace, Leading, Trailing };

// Reads config fields; a present-but-invalid value throws std::invalid_argument naming field, value and file.
class ConfigReader {
public:
    ConfigReader(const Json& config, std::string source_name) : m_config(config), m_source(std::move(source_name)) {}
    template <typename T>
    T get(const char* key, T fallback) const;
    BetaSchedule beta_schedule(BetaSchedule fallback) const;
    PredictionType prediction_type(PredictionType fallback) const;
    TimestepSpacing timestep_spacing(TimestepSpacing fallback) const;
    std::string enum_string(const char* key, const std::string& fallback, const std::vector<std::string>& allowed) const;
    [[noreturn]] void invalid(const std::string& key, const std::string& problem) const;
    const Json* find(const char* key) const { return m_config.find(key); }

private:
    const Json& m_config;
    std::string m_source;
};

// numpy-like linspace with the oracle's arithmetic: delta = (end - start) / n in U, value_i = T(start + delta * i).
template <typename T, typename U>
std::vector<T> linspace(U start, U end, size_t num, bool endpoint) {
    std::vector<T> values;
    if (num == 1) values.push_back(static_cast<T>(start));
    if (num <= 1) return values;
    const size_t intervals = endpoint ? num - 1 : num;
    const U delta = (end - start) / static_cast<U>(intervals);
    for (size_t i = 0; i < intervals; ++i) values.push_back(static_cast<T>(start + delta * static_cast<U>(i)));
    if (endpoint) values.push_back(static_cast<T>(end));
    return values;
}

struct BetaConfig {
    size_t num_train_timesteps;
    float beta_start, beta_end;
    BetaSchedule schedule;
    std::vector<float> trained_betas;
};
BetaConfig read_beta_config(const ConfigReader& reader, float default_beta_start, float default_beta_end, BetaSchedule default_schedule);
// DDIM/Euler/EulerAncestral/PNDM betas: linspace WITHOUT endpoint (see docs, betas).
std::vector<float> betas_endpoint_false(const BetaConfig& config, const ConfigReader& reader);
void rescale_zero_terminal_snr(std::vector<float>& betas);
std::vector<float> alphas_cumprod_from_betas(const std::vector<float>& betas);  // float running product

// Descending timesteps for DDIM/Euler/EulerAncestral; TRAILING replicates the float-accumulating loop.
std::vector<int64_t> spaced_timesteps(TimestepSpacing spacing, size_t num_train_timesteps, size_t num_inference_steps, size_t steps_offset);
// t_start = N - min((size_t)(N * strength), N), with the product in float.
size_t strength_start_index(size_t num_inference_steps, float strength);
std::vector<int64_t> slice_from(const std::vector<int64_t>& timesteps, size_t start, float strength);  // throws if empty

// sqrt((1 - a) / a): float quotient, double pow, stored as float.
float sigma_from_alpha_cumprod(float alpha_cumprod);
// x <- sqrt(a) * x + sqrt(1 - a) * n; DDIM/PNDM take the second root in double, LCM in float.
void add_noise_alpha(float* x, const float* noise, size_t count, float alpha_cumprod, bool one_minus_root_in_double);
float alpha_at(const std::vector<float>& alphas_cumprod, int64_t timestep);  // bounds-checked

// Euler family: sigma at each timestep by linear interpolation of the ascending sigma table.
std::vector<float> interp_sigmas(const std::vector<int64_t>& timesteps, const std::vector<float>& sigmas_ascending);
void divide_by_sigma_norm(float* latent, size_t count, float sigma);  // x / pow(sigma^2 + 1, 0.5) in double
// x0 for v_prediction on the Euler family, evaluated in double as the oracle does.
float euler_v_prediction_x0(float model_output, float sample, float sigma);
size_t index_of_timestep(const std::vector<int64_t>& schedule, int64_t timestep);

// Betas (endpoint=false, optional zero-SNR rescale) to alphas_cumprod; with the rescale the last one becomes 2^-24.
std::vector<float> euler_family_alphas(const ConfigReader& reader, BetaSchedule default_schedule);

// The config fields DDIM and PNDM read alike: betas (0.0001..0.02 unless set), prediction type, timestep spacing, offset.
struct DiscreteScheduleConfig {
    BetaConfig betas;
    PredictionType prediction;
    TimestepSpacing spacing;
    size_t steps_offset;
};
DiscreteScheduleConfig read_discrete_schedule(const ConfigReader& reader, BetaSchedule default_schedule);

// What DDIM, PNDM and LCM share: a cumulative-alpha table, the timesteps of the current run (no sigma scaling of the
// model input), and noise added at a timestep as sqrt(a) x + sqrt(1 - a) n.
class AlphaScheduleScheduler : public Scheduler {
public:
    std::vector<int64_t> timesteps() const override { return m_timesteps; }
    float init_noise_sigma() const override { return 1.0f; }
    void scale_model_input(float*, size_t, size_t) override {}
    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const override {
        add_noise_alpha(init_latent, noise, count, alpha_at(m_alphas_cumprod, timestep), m_noise_root_in_double);
    }

protected:
    // DDIM and PNDM take the second root of add_noise in double, LCM in float (as the oracle).
    explicit AlphaScheduleScheduler(bool noise_root_in_double) : m_noise_root_in_double(noise_root_in_double) {}

    std::vector<float> m_alphas_cumprod;
    float m_final_alpha_cumprod = 1.0f;
    size_t m_num_inference_steps = 0;
    std::vector<int64_t> m_timesteps;

private:
    bool m_noise_root_in_double;
};

// Sigma schedule and step counter shared by EulerDiscrete and EulerAncestralDiscrete.
struct EulerState {
    std::vector<float> alphas_cumprod;
    std::vector<int64_t> schedule_timesteps;  // un-sliced, for add_noise lookups
    std::vector<int64_t> timesteps;           // after strength slicing
    std::vector<float> sigmas;                // one per un-sliced step, then the final sigma
    int64_t step_index = -1, begin_index = -1;

    explicit EulerState(std::vector<float> alphas);
    void set_timesteps(TimestepSpacing spacing, size_t num_inference_steps, size_t steps_offset, float strength, bool log_linear_sigmas,
                       bool final_sigma_min);
    float max_sigma() const;
    size_t current_index();  // starts at begin_index on first use
    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const;
};

// What EulerDiscrete and EulerAncestralDiscrete share: the sigma schedule and step counter, the config fields they read
// alike, the model input divided by sqrt(sigma^2 + 1), and noise added at a timestep's sigma.
class EulerFamilyScheduler : public Scheduler {
public:
    std::vector<int64_t> timesteps() const override { return m_state.timesteps; }
    float init_noise_sigma() const override;
    // Like the oracle, the scheduler's own step counter picks sigma; step_index is not used.
    void scale_model_input(float* latent, size_t count, size_t) override {
        divide_by_sigma_norm(latent, count, m_state.sigmas[m_state.current_index()]);
    }
    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const override {
        m_state.add_noise(init_latent, noise, count, timestep);
    }

protected:
    // EulerDiscrete takes init_noise_sigma's root in float, EulerAncestral in double (as the oracle).
    EulerFamilyScheduler(const ConfigReader& reader, BetaSchedule default_schedule, bool init_sigma_in_double);

    EulerState m_state;
    PredictionType m_prediction;
    TimestepSpacing m_spacing;
    size_t m_steps_offset;

private:
    bool m_init_sigma_in_double;
};

std::unique_ptr<Scheduler> make_ddim(const ConfigReader& reader);
std::unique_ptr<Scheduler> make_euler_discrete(const ConfigReader& reader);
std::unique_ptr<Scheduler> make_euler_ancestral_discrete(const ConfigReader& reader);
std::unique_ptr<Scheduler> make_pndm(const ConfigReader& reader);
std::unique_ptr<Scheduler> make_lcm(const ConfigReader& reader);
std::unique_ptr<Scheduler> make_flow_match_euler_discrete(const ConfigReader& reader);
std::unique_ptr<Scheduler> make_dpm_solver_multistep(const ConfigReader& reader, SchedulerType variant);
std::unique_ptr<Scheduler> make_unipc_multistep(const ConfigReader& reader);
std::unique_ptr<Scheduler> make_heun_discrete(const ConfigReader& reader);
// Which DPM-Solver++ 2M variant a DPMSolverMultistepScheduler config describes (its algorithm_type and sigmas).
SchedulerType dpm_solver_variant_of(const ConfigReader& reader);

// ---- The solvers openvino_genai lacks follow diffusers' arithmetic (its schedulers are their reference) ----

// torch.linspace in float32 (betas WITH the end point), as diffusers builds its beta tables.
std::vector<float> torch_linspace_f32(float start, float end, size_t num);
// numpy.linspace(start, stop, num) with the end point, in double.
std::vector<double> numpy_linspace(double start, double stop, size_t num);
// numpy's round(): half to even.
double round_half_even(double x);
// diffusers' betas (linear or scaled_linear, end point included, or trained_betas) to alphas_cumprod; with
// rescale_betas_zero_snr (when `allow_zero_snr`) the last one becomes 2^-24 as there.
std::vector<float> diffusers_alphas_cumprod(const ConfigReader& reader, BetaSchedule default_schedule, bool allow_zero_snr);
// sqrt((1 - a) / a) per training timestep, float, ascending in t.
std::vector<float> sigma_table(const std::vector<float>& alphas_cumprod);
// The continuous timestep of `sigma` by interpolation in log-sigma (diffusers' _sigma_to_t).
double sigma_to_t(double sigma, const std::vector<float>& log_sigma_table);
// Sigmas from sigma_max down to sigma_min: Karras et al. (rho = 7) or evenly spaced in log-sigma.
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, size_t num);
std::vector<double> exponential_sigmas(double sigma_min, double sigma_max, size_t num);
// np.interp(t, [0..T-1], table).
double interp_table(double t, const std::vector<float>& table);
// The multistep solvers' grid: N+1 points, the last (t = 0) dropped. `last_timestep` is T unless clipped.
std::vector<int64_t> multistep_timesteps(TimestepSpacing spacing, size_t num_train_timesteps, size_t last_timestep,
                                         size_t num_inference_steps, size_t steps_offset);

// Variance-preserving view of a sigma: alpha = 1 / sqrt(sigma^2 + 1), sigma_vp = sigma * alpha,
// lambda = log(alpha) - log(sigma_vp) (+inf at sigma 0).
struct VpPoint {
    double alpha, sigma, lambda;
    explicit VpPoint(double s);
};

// What DPM-Solver++ and UniPC share: the sigma schedule in VP space, the step counter, x0 from the model output,
// and noise added as alpha x + sigma n at the sigma of the current step.
class MultistepSchedule {
public:
    MultistepSchedule(const ConfigReader& reader, const char* scheduler_name);
    // `sigmas` picks the grid: Linspace = the timesteps' own sigmas; with Karras/Exponential they come first
    // and the timesteps follow from them.
    enum class Sigmas { FromTimesteps, Karras, Exponential };
    void set_timesteps(size_t num_inference_steps, float strength, Sigmas kind);

    std::vector<int64_t> timesteps;           // after strength slicing
    std::vector<int64_t> schedule_timesteps;  // the full grid
    std::vector<float> sigmas;                // one per full-grid step, then the final sigma
    size_t index = 0, begin = 0;
    PredictionType prediction;
    bool final_sigma_zero = true;

    size_t steps_in_schedule() const { return schedule_timesteps.size(); }
    // x0 predicted from the model output at the current index, element by element into `x0`.
    void predict_x0(const float* model_output, const float* sample, size_t count, float* x0) const;
    void add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const;

private:
    std::vector<float> m_alphas_cumprod;
    TimestepSpacing m_spacing;
    size_t m_steps_offset;
    size_t m_last_timestep;
};

template <typename T>
T ConfigReader::get(const char* key, T fallback) const {
    try {
        return m_config.get_or<T>(key, fallback);
    } catch (const std::invalid_argument& e) {
        invalid(key, e.what());
    }
}

}  // namespace detail
}  // namespace ovd
