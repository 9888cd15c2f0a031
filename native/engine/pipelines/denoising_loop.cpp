#include "pipelines/denoising_loop.hpp"

#include <algorithm>

#include "base/errors.hpp"

namespace ovd {

bool run_denoising_loop(const DenoisingLoop& loop, const GenerationControl& control, GenerationResult& result) {
    for (size_t i = 0; i < loop.num_steps; ++i) {
        if (control.cancelled && control.cancelled->load()) {
            result.stopped = true;
            return false;
        }
        const auto step_start = Clock::now();
        loop.step(i);
        result.metrics.step_ms.push_back(ms_since(step_start));
        result.steps = i + 1;
        if (control.on_step && control.on_step(i, loop.num_steps, loop.latent_for_callback())) {
            result.stopped = true;
            return false;
        }
    }
    return true;
}

void infer_denoiser(ov::InferRequest& request, GenerationResult& result, const char* what) {
    const auto start = Clock::now();
    try {
        request.infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string(what) + " inference failed: " + e.what());
    }
    result.metrics.denoiser_ms.push_back(ms_since(start));
}

void apply_guidance(const float* prediction, size_t count, bool with_guidance, float guidance_scale, float* out) {
    if (!with_guidance) {
        std::copy_n(prediction, count, out);
        return;
    }
    const float* uncond = prediction;
    const float* cond = prediction + count;
    for (size_t k = 0; k < count; ++k) out[k] = uncond[k] + guidance_scale * (cond[k] - uncond[k]);
}

void blend_outside_mask(float* latent, const float* image_noised, const float* mask, size_t count, size_t mask_period) {
    for (size_t k = 0; k < count; ++k) {
        const float m = mask[k % mask_period];
        latent[k] = (1.0f - m) * image_noised[k] + m * latent[k];
    }
}

void finish_generation(bool completed, const std::function<ov::Tensor()>& decode, Clock::time_point start, GenerationResult& result) {
    if (completed) {
        const auto t0 = Clock::now();
        result.images = decode();
        result.metrics.vae_decode_ms = ms_since(t0);
    }
    result.metrics.total_ms = ms_since(start);
}

}  // namespace ovd
