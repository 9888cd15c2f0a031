// Scheduler factory and the math shared by several schedulers (betas, alphas, spacing, strength).
// Float vs double follows the oracle exactly; the comments say where it promotes (see docs, Schedulers).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

#include "schedulers/scheduler.hpp"

namespace ovd {

namespace {

struct TypeName {
    SchedulerType type;
    const char* name;
    const char* class_name;
};

const TypeName kTypeNames[] = {
    {SchedulerType::Auto, "AUTO", nullptr},
    {SchedulerType::DDIM, "DDIM", "DDIMScheduler"},
    {SchedulerType::EulerDiscrete, "EULER_DISCRETE", "EulerDiscreteScheduler"},
    {SchedulerType::EulerAncestralDiscrete, "EULER_ANCESTRAL_DISCRETE", "EulerAncestralDiscreteScheduler"},
    {SchedulerType::PNDM, "PNDM", "PNDMScheduler"},
    {SchedulerType::LCM, "LCM", "LCMScheduler"},
    {SchedulerType::FlowMatchEulerDiscrete, "FLOW_MATCH_EULER_DISCRETE", "FlowMatchEulerDiscreteScheduler"},
    {SchedulerType::DDIM, "LMS_DISCRETE", "LMSDiscreteScheduler"},  // deprecated alias, runs DDIM
    // A DPMSolverMultistepScheduler folder config picks its variant by its own fields (dpm_solver_variant_of).
    {SchedulerType::DPMSolverPP2M, "DPMPP_2M", "DPMSolverMultistepScheduler"},
    {SchedulerType::DPMSolverPP2MKarras, "DPMPP_2M_KARRAS", nullptr},
    {SchedulerType::DPMSolverPP2MExponential, "DPMPP_2M_EXPONENTIAL", nullptr},
    {SchedulerType::DPMSolverPP2MSDE, "DPMPP_2M_SDE", nullptr},
    {SchedulerType::DPMSolverPP2MSDEKarras, "DPMPP_2M_SDE_KARRAS", nullptr},
    {SchedulerType::DPMSolverPP2MSDEExponential, "DPMPP_2M_SDE_EXPONENTIAL", nullptr},
    {SchedulerType::UniPC, "UNIPC", "UniPCMultistepScheduler"},
    {SchedulerType::Heun, "HEUN", "HeunDiscreteScheduler"},
};

bool is_dpm_solver(SchedulerType type) {
    switch (type) {
        case SchedulerType::DPMSolverPP2M:
        case SchedulerType::DPMSolverPP2MKarras:
        case SchedulerType::DPMSolverPP2MExponential:
        case SchedulerType::DPMSolverPP2MSDE:
        case SchedulerType::DPMSolverPP2MSDEKarras:
        case SchedulerType::DPMSolverPP2MSDEExponential: return true;
        default: return false;
    }
}

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

}  // namespace

SchedulerType parse_scheduler_type(const std::string& name) {
    const std::string wanted = upper(name);
    std::vector<std::string> valid;
    for (const auto& entry : kTypeNames) {
        if (wanted == entry.name) return entry.type;
        valid.push_back(entry.name);
    }
    throw std::invalid_argument("Unknown scheduler type '" + name + "'; valid names: " + join(valid));
}

const char* scheduler_type_name(SchedulerType type) {
    for (const auto& entry : kTypeNames)
        if (entry.type == type) return entry.name;
    return "UNKNOWN";
}

std::vector<std::string> scheduler_type_names() {
    std::vector<std::string> names;
    for (const auto& entry : kTypeNames) names.push_back(entry.name);
    return names;
}

bool is_flow_matching(SchedulerType type) { return type == SchedulerType::FlowMatchEulerDiscrete; }

std::vector<std::string> scheduler_names_like(SchedulerType folder_type) {
    std::vector<std::string> names;
    for (const auto& entry : kTypeNames)
        if (entry.type == SchedulerType::Auto || is_flow_matching(entry.type) == is_flow_matching(folder_type)) names.push_back(entry.name);
    return names;
}

std::vector<std::string> scheduler_names_for_class(const std::string& class_name) {
    for (const auto& entry : kTypeNames)
        if (entry.class_name && class_name == entry.class_name) return scheduler_names_like(entry.type);
    return {"AUTO"};
}

SchedulerType scheduler_type_from_class_name(const std::string& class_name, const std::string& source_name) {
    std::vector<std::string> valid;
    for (const auto& entry : kTypeNames) {
        if (!entry.class_name) continue;
        if (class_name == entry.class_name) return entry.type;
        valid.push_back(entry.class_name);
    }
    throw std::invalid_argument("Unsupported value for '_class_name': '" + class_name + "' in " + source_name +
                                " (supported: " + join(valid) + ")");
}

void Scheduler::set_timesteps(size_t, size_t, float) {
    throw std::logic_error(std::string("set_timesteps(image_seq_len, ...) is only supported by FlowMatchEulerDiscrete, not ") +
                           scheduler_type_name(type()));
}

std::vector<int64_t> Scheduler::timesteps() const {
    throw std::logic_error(std::string(scheduler_type_name(type())) + " has no integer timesteps");
}

bool Scheduler::completes_step(size_t call_index) const {
    const std::vector<int64_t> ts = timesteps();
    return call_index + 1 >= ts.size() || ts[call_index + 1] != ts[call_index];
}

std::vector<float> Scheduler::float_timesteps() {
    throw std::logic_error(std::string(scheduler_type_name(type())) + " has no float timesteps");
}

void Scheduler::scale_noise(float*, const float*, size_t, float) {
    throw std::logic_error(std::string("scale_noise is only supported by FlowMatchEulerDiscrete, not ") + scheduler_type_name(type()));
}

std::unique_ptr<Scheduler> create_scheduler(const std::string& path, SchedulerType type) {
    return create_scheduler(Json::parse_file(path), type, path);
}

std::unique_ptr<Scheduler> create_scheduler(const Json& config, SchedulerType type, const std::string& source_name) {
    if (!config.is_object()) throw std::invalid_argument("scheduler config " + source_name + " is not a JSON object");
    if (type == SchedulerType::Auto) {
        const Json* class_name = config.find("_class_name");
        if (!class_name || !class_name->is_string() || class_name->as_string().empty())
            throw std::invalid_argument("Failed to find a '_class_name' string in " + source_name);
        type = scheduler_type_from_class_name(class_name->as_string(), source_name);
        if (is_dpm_solver(type)) type = detail::dpm_solver_variant_of(detail::ConfigReader(config, source_name));
    }
    const detail::ConfigReader reader(config, source_name);
    if (is_dpm_solver(type)) return detail::make_dpm_solver_multistep(reader, type);
    switch (type) {
        case SchedulerType::DDIM: return detail::make_ddim(reader);
        case SchedulerType::EulerDiscrete: return detail::make_euler_discrete(reader);
        case SchedulerType::EulerAncestralDiscrete: return detail::make_euler_ancestral_discrete(reader);
        case SchedulerType::PNDM: return detail::make_pndm(reader);
        case SchedulerType::LCM: return detail::make_lcm(reader);
        case SchedulerType::FlowMatchEulerDiscrete: return detail::make_flow_match_euler_discrete(reader);
        case SchedulerType::UniPC: return detail::make_unipc_multistep(reader);
        case SchedulerType::Heun: return detail::make_heun_discrete(reader);
        default: break;
    }
    throw std::invalid_argument("Unsupported scheduler type for " + source_name);
}

namespace detail {

void ConfigReader::invalid(const std::string& key, const std::string& problem) const {
    throw std::invalid_argument("Invalid scheduler config field '" + key + "' in " + m_source + ": " + problem);
}

// Enum-like fields: a non-string or empty value keeps the default, as in the oracle.
std::string ConfigReader::enum_string(const char* key, const std::string& fallback, const std::vector<std::string>& allowed) const {
    const Json* v = m_config.find(key);
    if (!v || !v->is_string() || v->as_string().empty()) return fallback;
    const std::string& value = v->as_string();
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
        invalid(key, "unsupported value '" + value + "' (expected one of: " + join(allowed) + ")");
    return value;
}

BetaSchedule ConfigReader::beta_schedule(BetaSchedule fallback) const {
    const std::string v = enum_string("beta_schedule", "", {"linear", "scaled_linear", "squaredcos_cap_v2"});
    if (v == "linear") return BetaSchedule::Linear;
    if (v == "scaled_linear") return BetaSchedule::ScaledLinear;
    if (v == "squaredcos_cap_v2") return BetaSchedule::SquaredCosCapV2;
    return fallback;
}

PredictionType ConfigReader::prediction_type(PredictionType fallback) const {
    const std::string v = enum_string("prediction_type", "", {"epsilon", "sample", "v_prediction"});
    if (v == "epsilon") return PredictionType::Epsilon;
    if (v == "sample") return PredictionType::Sample;
    if (v == "v_prediction") return PredictionType::VPrediction;
    return fallback;
}

TimestepSpacing ConfigReader::timestep_spacing(TimestepSpacing fallback) const {
    const std::string v = enum_string("timestep_spacing", "", {"linspace", "leading", "trailing"});
    if (v == "linspace") return TimestepSpacing::Linspace;
    if (v == "leading") return TimestepSpacing::Leading;
    if (v == "trailing") return TimestepSpacing::Trailing;
    return fallback;
}

BetaConfig read_beta_config(const ConfigReader& reader, float default_beta_start, float default_beta_end, BetaSchedule default_schedule) {
    BetaConfig config;
    config.num_train_timesteps = reader.get<size_t>("num_train_timesteps", 1000);
    config.beta_start = reader.get<float>("beta_start", default_beta_start);
    config.beta_end = reader.get<float>("beta_end", default_beta_end);
    config.schedule = reader.beta_schedule(default_schedule);
    config.trained_betas = reader.get<std::vector<float>>("trained_betas", {});
    if (config.num_train_timesteps == 0) reader.invalid("num_train_timesteps", "must be positive");
    if (!config.trained_betas.empty() && config.trained_betas.size() != config.num_train_timesteps)
        reader.invalid("trained_betas", "has " + std::to_string(config.trained_betas.size()) + " values but num_train_timesteps is " +
                                            std::to_string(config.num_train_timesteps));
    return config;
}

std::vector<float> betas_endpoint_false(const BetaConfig& config, const ConfigReader& reader) {
    if (!config.trained_betas.empty()) return config.trained_betas;
    const size_t n = config.num_train_timesteps;
    switch (config.schedule) {
        case BetaSchedule::Linear: return linspace<float, float>(config.beta_start, config.beta_end, n, false);
        case BetaSchedule::ScaledLinear: {
            // Interpolate square roots (float sqrt), then square in float.
            std::vector<float> betas = linspace<float, float>(std::sqrt(config.beta_start), std::sqrt(config.beta_end), n, false);
            for (float& b : betas) b *= b;
            return betas;
        }
        case BetaSchedule::SquaredCosCapV2: break;
    }
    reader.invalid("beta_schedule", "'squaredcos_cap_v2' is not supported (use 'linear' or 'scaled_linear')");
}

// Zero terminal SNR rescale (arXiv 2305.08891, Algorithm 1) in float.
void rescale_zero_terminal_snr(std::vector<float>& betas) {
    std::vector<float> sqrt_cumprod = alphas_cumprod_from_betas(betas);
    for (float& a : sqrt_cumprod) a = std::sqrt(a);
    const float first = sqrt_cumprod.front(), last = sqrt_cumprod.back();
    for (float& x : sqrt_cumprod) {
        x = x - last;
        x *= first / (first - last);
        x = static_cast<float>(std::pow(static_cast<double>(x), 2));
    }
    std::vector<float> alphas(betas.size());
    alphas[0] = sqrt_cumprod[0];
    for (size_t i = 1; i < alphas.size(); ++i) alphas[i] = sqrt_cumprod[i] / sqrt_cumprod[i - 1];
    for (size_t i = 0; i < betas.size(); ++i) betas[i] = 1 - alphas[i];
}

std::vector<float> alphas_cumprod_from_betas(const std::vector<float>& betas) {
    std::vector<float> cumprod;
    cumprod.reserve(betas.size());
    float product = 1.0f;
    for (float b : betas) {
        product *= 1.0f - b;
        cumprod.push_back(product);
    }
    return cumprod;
}

std::vector<int64_t> spaced_timesteps(TimestepSpacing spacing, size_t num_train_timesteps, size_t num_inference_steps,
                                      size_t steps_offset) {
    if (num_inference_steps == 0) throw std::invalid_argument("num_inference_steps must be positive");
    std::vector<int64_t> timesteps;
    switch (spacing) {
        case TimestepSpacing::Linspace: {
            const auto grid = linspace<float, float>(0.0f, static_cast<float>(num_train_timesteps - 1), num_inference_steps, true);
            for (auto it = grid.rbegin(); it != grid.rend(); ++it) timesteps.push_back(static_cast<int64_t>(std::round(*it)));
            break;
        }
        case TimestepSpacing::Leading: {
            const size_t ratio = num_train_timesteps / num_inference_steps;
            for (size_t i = num_inference_steps; i-- > 0;) timesteps.push_back(static_cast<int64_t>(i * ratio + steps_offset));
            break;
        }
        case TimestepSpacing::Trailing: {
            // The oracle subtracts the float ratio repeatedly; the accumulated error can add an N+1-th step of -1.
            const float ratio = static_cast<float>(num_train_timesteps) / static_cast<float>(num_inference_steps);
            for (float t = static_cast<float>(num_train_timesteps); t > 0; t -= ratio)
                timesteps.push_back(static_cast<int64_t>(std::round(t)) - 1);
            break;
        }
    }
    return timesteps;
}

size_t strength_start_index(size_t num_inference_steps, float strength) {
    const float scaled = static_cast<float>(num_inference_steps) * strength;
    const size_t init_timestep = std::min(scaled > 0.0f ? static_cast<size_t>(scaled) : size_t(0), num_inference_steps);
    return num_inference_steps - init_timestep;
}

std::vector<int64_t> slice_from(const std::vector<int64_t>& timesteps, size_t start, float strength) {
    if (start >= timesteps.size())
        throw std::invalid_argument("After adjusting num_inference_steps by strength " + std::to_string(strength) +
                                    " no denoising step is left; use a larger strength or more steps");
    return std::vector<int64_t>(timesteps.begin() + static_cast<std::ptrdiff_t>(start), timesteps.end());
}

float sigma_from_alpha_cumprod(float alpha_cumprod) {
    const float ratio = (1 - alpha_cumprod) / alpha_cumprod;
    return static_cast<float>(std::pow(static_cast<double>(ratio), 0.5));
}

DiscreteScheduleConfig read_discrete_schedule(const ConfigReader& reader, BetaSchedule default_schedule) {
    return {read_beta_config(reader, 0.0001f, 0.02f, default_schedule), reader.prediction_type(PredictionType::Epsilon),
            reader.timestep_spacing(TimestepSpacing::Leading), reader.get<size_t>("steps_offset", 0)};
}

void add_noise_alpha(float* x, const float* noise, size_t count, float alpha_cumprod, bool one_minus_root_in_double) {
    const float sqrt_alpha = std::sqrt(alpha_cumprod);
    const float sqrt_one_minus =
        one_minus_root_in_double ? static_cast<float>(std::sqrt(1.0 - alpha_cumprod)) : std::sqrt(1.0f - alpha_cumprod);
    for (size_t i = 0; i < count; ++i) x[i] = sqrt_alpha * x[i] + sqrt_one_minus * noise[i];
}

float alpha_at(const std::vector<float>& alphas_cumprod, int64_t timestep) {
    if (timestep < 0 || static_cast<size_t>(timestep) >= alphas_cumprod.size())
        throw std::out_of_range("timestep " + std::to_string(timestep) + " is outside the training schedule [0, " +
                                std::to_string(alphas_cumprod.size()) + ")");
    return alphas_cumprod[static_cast<size_t>(timestep)];
}

// np.interp over xp = 0..T-1 as the oracle writes it. Its bounds test compares the int64 timestep with an
// unsigned grid, so a -1 timestep (TRAILING quirk) lands on the LAST sigma, not the first.
std::vector<float> interp_sigmas(const std::vector<int64_t>& timesteps, const std::vector<float>& sigmas_ascending) {
    const uint64_t last = sigmas_ascending.size() - 1;
    std::vector<float> out;
    out.reserve(timesteps.size() + 1);
    for (int64_t t : timesteps) {
        const uint64_t ut = static_cast<uint64_t>(t);
        if (ut == 0) {
            out.push_back(sigmas_ascending.front());
        } else if (ut >= last) {
            out.push_back(sigmas_ascending.back());
        } else {
            const float x0 = static_cast<float>(ut - 1), x1 = static_cast<float>(ut);
            const float y0 = sigmas_ascending[ut - 1], y1 = sigmas_ascending[ut];
            out.push_back((y1 - y0) / (x1 - x0) * (static_cast<float>(t) - x0) + y0);
        }
    }
    return out;
}

void divide_by_sigma_norm(float* latent, size_t count, float sigma) {
    const double norm = std::pow(std::pow(static_cast<double>(sigma), 2) + 1, 0.5);
    for (size_t i = 0; i < count; ++i) latent[i] = static_cast<float>(latent[i] / norm);
}

float euler_v_prediction_x0(float model_output, float sample, float sigma) {
    const double sigma_sq_plus_one = std::pow(static_cast<double>(sigma), 2) + 1;
    return static_cast<float>(model_output * (-sigma / std::pow(sigma_sq_plus_one, 0.5)) + sample / sigma_sq_plus_one);
}

size_t index_of_timestep(const std::vector<int64_t>& schedule, int64_t timestep) {
    for (size_t i = 0; i < schedule.size(); ++i)
        if (schedule[i] == timestep) return i;
    throw std::invalid_argument("Failed to find index for timestep " + std::to_string(timestep));
}

std::vector<float> euler_family_alphas(const ConfigReader& reader, BetaSchedule default_schedule) {
    const BetaConfig betas_config = read_beta_config(reader, 0.0001f, 0.02f, default_schedule);
    const bool rescale = reader.get<bool>("rescale_betas_zero_snr", false);
    std::vector<float> betas = betas_endpoint_false(betas_config, reader);
    if (rescale) rescale_zero_terminal_snr(betas);
    std::vector<float> alphas = alphas_cumprod_from_betas(betas);
    if (rescale) alphas.back() = 0x1p-24f;  // keeps the last sigma finite
    return alphas;
}

EulerState::EulerState(std::vector<float> alphas) : alphas_cumprod(std::move(alphas)) {
    // Before set_timesteps the oracle holds the full descending table plus a final 0.
    for (auto it = alphas_cumprod.rbegin(); it != alphas_cumprod.rend(); ++it) sigmas.push_back(sigma_from_alpha_cumprod(*it));
    sigmas.push_back(0.0f);
}

void EulerState::set_timesteps(TimestepSpacing spacing, size_t num_inference_steps, size_t steps_offset, float strength,
                               bool log_linear_sigmas, bool final_sigma_min) {
    step_index = begin_index = -1;
    const size_t num_train_timesteps = alphas_cumprod.size();
    schedule_timesteps = spaced_timesteps(spacing, num_train_timesteps, num_inference_steps, steps_offset);

    std::vector<float> table;  // ascending in t
    for (float a : alphas_cumprod) table.push_back(sigma_from_alpha_cumprod(a));
    if (log_linear_sigmas) {
        // N + 1 values from log(sigma_max) down to log(sigma_min), float logf/expf.
        sigmas = linspace<float, float>(std::log(table.back()), std::log(table.front()), num_inference_steps + 1, true);
        for (float& s : sigmas) s = std::exp(s);
    } else {
        sigmas = interp_sigmas(schedule_timesteps, table);
    }
    sigmas.push_back(final_sigma_min ? table.front() : 0.0f);

    const size_t start = strength_start_index(num_inference_steps, strength);
    timesteps = slice_from(schedule_timesteps, start, strength);
    begin_index = static_cast<int64_t>(start);
}

float EulerState::max_sigma() const { return *std::max_element(sigmas.begin(), sigmas.end()); }

EulerFamilyScheduler::EulerFamilyScheduler(const ConfigReader& reader, BetaSchedule default_schedule, bool init_sigma_in_double)
    : m_state(euler_family_alphas(reader, default_schedule)),
      m_prediction(reader.prediction_type(PredictionType::Epsilon)),
      m_spacing(reader.timestep_spacing(TimestepSpacing::Leading)),
      m_steps_offset(reader.get<size_t>("steps_offset", 0)),
      m_init_sigma_in_double(init_sigma_in_double) {}

float EulerFamilyScheduler::init_noise_sigma() const {
    const float max_sigma = m_state.max_sigma();
    if (m_spacing != TimestepSpacing::Leading) return max_sigma;
    if (m_init_sigma_in_double) return static_cast<float>(std::sqrt(std::pow(static_cast<double>(max_sigma), 2) + 1));
    return std::sqrt(max_sigma * max_sigma + 1);
}

size_t EulerState::current_index() {
    if (step_index == -1) step_index = begin_index;
    if (step_index < 0 || static_cast<size_t>(step_index) + 1 >= sigmas.size())
        throw std::logic_error("Euler scheduler step index out of range; call set_timesteps first");
    return static_cast<size_t>(step_index);
}

void EulerState::add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const {
    const float sigma = sigmas.at(index_of_timestep(schedule_timesteps, timestep));
    for (size_t i = 0; i < count; ++i) init_latent[i] = init_latent[i] + sigma * noise[i];
}

// ---------------------------------------------------------------- diffusers' arithmetic

std::vector<float> torch_linspace_f32(float start, float end, size_t num) {
    // torch fills the first half forward from start and the second half backward from end.
    std::vector<float> out(num);
    if (num == 1) out[0] = start;
    if (num <= 1) return out;
    const float step = (end - start) / static_cast<float>(num - 1);
    const size_t half = num / 2;
    for (size_t i = 0; i < num; ++i)
        out[i] = i < half ? start + step * static_cast<float>(i) : end - step * static_cast<float>(num - 1 - i);
    return out;
}

std::vector<double> numpy_linspace(double start, double stop, size_t num) {
    std::vector<double> out(num);
    if (num == 1) out[0] = start;
    if (num <= 1) return out;
    const double step = (stop - start) / static_cast<double>(num - 1);
    for (size_t i = 0; i < num; ++i) out[i] = static_cast<double>(i) * step + start;
    out.back() = stop;
    return out;
}

double round_half_even(double x) {
    const double r = std::round(x);
    if (std::fabs(x - std::trunc(x)) == 0.5) return 2.0 * std::round(x / 2.0);
    return r;
}

std::vector<float> diffusers_alphas_cumprod(const ConfigReader& reader, BetaSchedule default_schedule, bool allow_zero_snr) {
    const BetaConfig config = read_beta_config(reader, 0.0001f, 0.02f, default_schedule);
    std::vector<float> betas = config.trained_betas;
    if (betas.empty()) {
        switch (config.schedule) {
            case BetaSchedule::Linear: betas = torch_linspace_f32(config.beta_start, config.beta_end, config.num_train_timesteps); break;
            case BetaSchedule::ScaledLinear:
                betas = torch_linspace_f32(static_cast<float>(std::sqrt(static_cast<double>(config.beta_start))),
                                           static_cast<float>(std::sqrt(static_cast<double>(config.beta_end))), config.num_train_timesteps);
                for (float& b : betas) b *= b;
                break;
            case BetaSchedule::SquaredCosCapV2:
                reader.invalid("beta_schedule", "'squaredcos_cap_v2' is not supported (use 'linear' or 'scaled_linear')");
        }
    }
    const bool rescale = reader.get<bool>("rescale_betas_zero_snr", false);
    if (rescale && !allow_zero_snr) reader.invalid("rescale_betas_zero_snr", "true is not supported by this scheduler");
    if (rescale) rescale_zero_terminal_snr(betas);
    std::vector<float> alphas = alphas_cumprod_from_betas(betas);
    if (rescale) alphas.back() = 0x1p-24f;
    return alphas;
}

std::vector<float> sigma_table(const std::vector<float>& alphas_cumprod) {
    std::vector<float> table;
    table.reserve(alphas_cumprod.size());
    for (float a : alphas_cumprod) table.push_back(std::sqrt((1.0f - a) / a));
    return table;
}

double sigma_to_t(double sigma, const std::vector<float>& log_sigma_table) {
    const double log_sigma = std::log(std::max(sigma, 1e-10));
    // The last entry not above log_sigma (0 when none is), kept below the table's end.
    size_t low = 0;
    for (size_t i = 0; i < log_sigma_table.size(); ++i)
        if (log_sigma - static_cast<double>(log_sigma_table[i]) >= 0) low = i;
    low = std::min(low, log_sigma_table.size() - 2);
    const double lo = log_sigma_table[low], hi = log_sigma_table[low + 1];
    const double w = std::clamp((lo - log_sigma) / (lo - hi), 0.0, 1.0);
    return (1 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, size_t num) {
    const double rho = 7.0, min_inv = std::pow(sigma_min, 1 / rho), max_inv = std::pow(sigma_max, 1 / rho);
    std::vector<double> sigmas;
    for (double r : numpy_linspace(0, 1, num)) sigmas.push_back(std::pow(max_inv + r * (min_inv - max_inv), rho));
    return sigmas;
}

std::vector<double> exponential_sigmas(double sigma_min, double sigma_max, size_t num) {
    std::vector<double> sigmas;
    for (double l : numpy_linspace(std::log(sigma_max), std::log(sigma_min), num)) sigmas.push_back(std::exp(l));
    return sigmas;
}

double interp_table(double t, const std::vector<float>& table) {
    if (t <= 0) return table.front();
    if (t >= static_cast<double>(table.size() - 1)) return table.back();
    const size_t lo = static_cast<size_t>(t);
    const double frac = t - static_cast<double>(lo);
    if (frac == 0) return table[lo];
    return (static_cast<double>(table[lo + 1]) - table[lo]) * frac + table[lo];
}

std::vector<int64_t> multistep_timesteps(TimestepSpacing spacing, size_t num_train_timesteps, size_t last_timestep,
                                         size_t num_inference_steps, size_t steps_offset) {
    if (num_inference_steps == 0) throw std::invalid_argument("num_inference_steps must be positive");
    std::vector<int64_t> timesteps;
    switch (spacing) {
        case TimestepSpacing::Linspace: {
            const auto grid = numpy_linspace(0, static_cast<double>(last_timestep) - 1, num_inference_steps + 1);
            for (size_t i = grid.size() - 1; i > 0; --i) timesteps.push_back(static_cast<int64_t>(round_half_even(grid[i])));
            break;
        }
        case TimestepSpacing::Leading: {
            const size_t ratio = last_timestep / (num_inference_steps + 1);
            for (size_t i = num_inference_steps; i > 0; --i) timesteps.push_back(static_cast<int64_t>(i * ratio + steps_offset));
            break;
        }
        case TimestepSpacing::Trailing: {
            const double ratio = static_cast<double>(num_train_timesteps) / static_cast<double>(num_inference_steps);
            const double start = static_cast<double>(last_timestep);
            const size_t count = static_cast<size_t>(std::ceil(start / ratio));
            for (size_t i = 0; i < count; ++i)
                timesteps.push_back(static_cast<int64_t>(round_half_even(start - static_cast<double>(i) * ratio)) - 1);
            break;
        }
    }
    return timesteps;
}

VpPoint::VpPoint(double s) : alpha(1 / std::sqrt(s * s + 1)), sigma(s * alpha), lambda(std::log(alpha) - std::log(sigma)) {}

MultistepSchedule::MultistepSchedule(const ConfigReader& reader, const char* scheduler_name)
    : prediction(reader.prediction_type(PredictionType::Epsilon)),
      m_alphas_cumprod(diffusers_alphas_cumprod(reader, BetaSchedule::Linear, true)),
      m_spacing(reader.timestep_spacing(TimestepSpacing::Linspace)),
      m_steps_offset(reader.get<size_t>("steps_offset", 0)) {
    final_sigma_zero = reader.enum_string("final_sigmas_type", "zero", {"zero", "sigma_min"}) == "zero";
    if (reader.get<bool>("thresholding", false)) reader.invalid("thresholding", std::string("true is not supported by ") + scheduler_name);
    for (const char* key : {"use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas", "use_dynamic_shifting"})
        if (reader.get<bool>(key, false)) reader.invalid(key, std::string("true is not supported by ") + scheduler_name);
    // lambda_min_clipped drops the grid's noisiest timesteps whose log-SNR is below it (default: none).
    const double lambda_min = reader.get<double>("lambda_min_clipped", -INFINITY);
    size_t clipped = 0;
    for (auto it = m_alphas_cumprod.rbegin(); it != m_alphas_cumprod.rend(); ++it) {
        const double lambda = std::log(std::sqrt(static_cast<double>(*it))) - std::log(std::sqrt(1.0 - *it));
        if (lambda < lambda_min) ++clipped;
    }
    m_last_timestep = m_alphas_cumprod.size() - clipped;
    if (m_last_timestep == 0) reader.invalid("lambda_min_clipped", "clips every timestep");
}

void MultistepSchedule::set_timesteps(size_t num_inference_steps, float strength, Sigmas kind) {
    const size_t train = m_alphas_cumprod.size();
    schedule_timesteps = multistep_timesteps(m_spacing, train, m_last_timestep, num_inference_steps, m_steps_offset);
    const std::vector<float> table = sigma_table(m_alphas_cumprod);
    std::vector<float> log_table;
    for (float s : table) log_table.push_back(std::log(s));
    sigmas.clear();
    if (kind == Sigmas::FromTimesteps) {
        for (int64_t t : schedule_timesteps) sigmas.push_back(static_cast<float>(interp_table(static_cast<double>(t), table)));
    } else {
        const auto grid = kind == Sigmas::Karras ? karras_sigmas(table.front(), table.back(), num_inference_steps)
                                                 : exponential_sigmas(table.front(), table.back(), num_inference_steps);
        schedule_timesteps.clear();
        for (double s : grid) {
            const double t = sigma_to_t(s, log_table);
            // Karras timesteps are rounded, exponential ones truncated, as in the reference.
            schedule_timesteps.push_back(static_cast<int64_t>(kind == Sigmas::Karras ? round_half_even(t) : t));
            sigmas.push_back(static_cast<float>(s));
        }
    }
    sigmas.push_back(final_sigma_zero ? 0.0f : table.front());
    begin = strength_start_index(num_inference_steps, strength);
    timesteps = slice_from(schedule_timesteps, begin, strength);
    index = begin;
}

void MultistepSchedule::predict_x0(const float* model_output, const float* sample, size_t count, float* x0) const {
    const VpPoint p(sigmas.at(index));
    const float alpha = static_cast<float>(p.alpha), sigma = static_cast<float>(p.sigma);
    for (size_t i = 0; i < count; ++i) {
        switch (prediction) {
            case PredictionType::Epsilon: x0[i] = (sample[i] - sigma * model_output[i]) / alpha; break;
            case PredictionType::Sample: x0[i] = model_output[i]; break;
            case PredictionType::VPrediction: x0[i] = alpha * sample[i] - sigma * model_output[i]; break;
        }
    }
}

void MultistepSchedule::add_noise(float* init_latent, const float* noise, size_t count, int64_t timestep) const {
    // The current step's sigma when it is this timestep (image-to-image start, inpainting blend), else the first match.
    const size_t at = index < schedule_timesteps.size() && schedule_timesteps[index] == timestep
                          ? index
                          : index_of_timestep(schedule_timesteps, timestep);
    const VpPoint p(sigmas[at]);
    const float alpha = static_cast<float>(p.alpha), sigma = static_cast<float>(p.sigma);
    for (size_t i = 0; i < count; ++i) init_latent[i] = alpha * init_latent[i] + sigma * noise[i];
}

}  // namespace detail
}  // namespace ovd
