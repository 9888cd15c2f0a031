#pragma once
// What one generate() call asks for. Unset optionals take the model's defaults (see each pipeline).
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <openvino/openvino.hpp>

#include "schedulers/scheduler.hpp"

namespace ovd {

class WeightFiles;

// A registered adapter chosen for one call; without alpha, its registered alpha applies. The same shape at every
// layer: the server's aliases and composites, the library's selections and presets all become a list of these.
struct AdapterChoice {
    std::string name;
    std::optional<float> alpha;
};

// TaylorSeer-Lite: on some steps the SD3/FLUX transformer output is extrapolated from earlier ones
// instead of computed. Defaults are the oracle's; it only acts on runs of 9 or more steps.
struct TaylorSeerConfig {
    int64_t cache_interval = 3;             // >= 2: compute every cache_interval-th step in the cached range
    int64_t disable_cache_before_step = 6;  // always compute the steps before this one
    int64_t disable_cache_after_step = -2;  // ... and from this one on (negative: counted from the end)
};

struct GenerationParams {
    std::string prompt;
    std::optional<std::string> prompt_2, prompt_3;
    std::optional<std::string> negative_prompt, negative_prompt_2, negative_prompt_3;
    std::optional<int64_t> width, height;
    std::optional<int64_t> num_inference_steps;
    std::optional<float> guidance_scale;
    std::optional<float> guidance_rescale;         // UNet models with guidance; unset = 0 (off, as the oracle)
    std::optional<int64_t> num_images_per_prompt;  // unset: 1, or the static shape's count
    uint64_t rng_seed = 42;
    std::optional<float> strength;
    std::optional<int64_t> max_sequence_length;
    // SD3/FLUX: unset = the family default (on for text-to-image, as the oracle); disable_taylorseer turns it off.
    std::optional<TaylorSeerConfig> taylorseer;
    bool disable_taylorseer = false;
    // UNet models loaded with DeepCache: run the whole UNet every deepcache_interval-th call, the shallow part
    // between; unset or 1: every call runs the whole UNet (the uncached pixels).
    std::optional<int64_t> deepcache_interval;
    SchedulerType scheduler = SchedulerType::Auto;  // Auto: the folder's scheduler_config.json
    std::vector<AdapterChoice> adapters;            // LoRA adapters for this call (none: the base model)
};

// The parameters a caller sets, listed once for the conversion layers: the addon reads exactly these
// fields, by `name`, and converts each by its kind. lib/parameters.ts declares the same list for the
// TypeScript side; test/parameters.test.js checks that the two agree.
enum class ParamKind { String, Integer, Number, Scheduler, TaylorSeer };

// One converted value; only the member of the field's kind is meaningful.
struct ParamValue {
    std::string text;
    int64_t integer = 0;
    double number = 0;
    std::optional<TaylorSeerConfig> taylorseer;  // TaylorSeer: nullopt means "off" (false)
};

struct ParamField {
    const char* name;  // the GenerationParams member, and the OVMS request field
    ParamKind kind;
    void (*set)(GenerationParams& params, const ParamValue& value);
};

const std::vector<ParamField>& generation_param_fields();
const char* param_kind_name(ParamKind kind);

// Timings of one call, in milliseconds.
struct GenerationMetrics {
    double text_encode_ms = 0;
    std::map<std::string, double> text_encoder_ms;  // per encoder, named as the oracle's metrics name them
    double vae_encode_ms = 0;
    double vae_decode_ms = 0;
    std::vector<double> step_ms;      // wall time of each denoising step (denoiser + scheduler; with its warm-up call)
    size_t warmup_calls = 0;          // denoiser calls that are no step of their own (PNDM's warm-up, Heun's predictors)
    std::vector<double> denoiser_ms;  // each denoiser inference alone (none on TaylorSeer-predicted steps)
    double adapter_apply_ms = 0;      // setting LoRA states on the requests (0 when they already held this call's set)
    double total_ms = 0;
};

struct GenerationResult {
    ov::Tensor images;  // RGB u8 [N,H,W,3]; empty when the caller stopped the run
    bool stopped = false;
    size_t width = 0, height = 0, steps = 0;  // steps actually run
    uint64_t seed = 0;
    std::string scheduler;
    GenerationMetrics metrics;
};

// Called after every denoising step with the current prediction of the final latent. Returning
// true stops the run (the result is then marked `stopped` and holds no images).
using StepCallback = std::function<bool(size_t step, size_t num_steps, const ov::Tensor& denoised)>;

// Whether the 0-based `step` of `total` is one of `previews` evenly spread preview points; the final
// step never is (it produces the image itself).
inline bool is_preview_step(size_t step, size_t total, size_t previews) {
    for (size_t k = 1; k <= previews; ++k) {
        const size_t at = (2 * total * k + previews + 1) / (2 * (previews + 1));  // round(total * k / (previews + 1))
        if (at >= 1 && at < total && step + 1 == at) return true;
    }
    return false;
}

struct GenerationControl {
    StepCallback on_step;
    const std::atomic<bool>* cancelled = nullptr;  // checked before every step
    // Checked before every step: a weight file being rewritten stops the call with ERR_MODEL_CHANGED. Set by
    // DiffusionModel::generate.
    const WeightFiles* weights = nullptr;
};

}  // namespace ovd
