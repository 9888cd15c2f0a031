#pragma once
// What one generate() call asks for. Unset optionals take the model's defaults (see each pipeline).
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <openvino/openvino.hpp>

#include "scheduler.hpp"

namespace ovd {

struct GenerationParams {
    std::string prompt;
    std::optional<std::string> prompt_2, prompt_3;
    std::optional<std::string> negative_prompt, negative_prompt_2, negative_prompt_3;
    std::optional<int64_t> width, height;
    std::optional<int64_t> num_inference_steps;
    std::optional<float> guidance_scale;
    int64_t num_images_per_prompt = 1;
    uint64_t rng_seed = 42;
    std::optional<float> strength;
    std::optional<int64_t> max_sequence_length;
    SchedulerType scheduler = SchedulerType::Auto;  // Auto: the folder's scheduler_config.json
};

// Timings of one call, in milliseconds.
struct GenerationMetrics {
    double text_encode_ms = 0;
    double vae_encode_ms = 0;
    double vae_decode_ms = 0;
    std::vector<double> step_ms;   // wall time of each denoising step (denoiser + scheduler)
    std::vector<double> denoiser_ms;  // the denoiser inference alone, per step
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

struct GenerationControl {
    StepCallback on_step;
    const std::atomic<bool>* cancelled = nullptr;  // checked before every step
};

}  // namespace ovd
