#pragma once
// The denoising loop's bookkeeping that every family shares: cancellation, step timing, the step
// callback, guidance, blending outside an inpainting mask and the final decode.
#include <functional>

#include "base/runtime.hpp"
#include "pipelines/generation_params.hpp"

namespace ovd {

// One denoising run. `step(i)` performs step i; `latent_for_callback()` gives what the step callback
// sees after it (asked for only when there is a callback).
struct DenoisingLoop {
    size_t num_steps = 0;
    std::function<void(size_t)> step;
    std::function<ov::Tensor()> latent_for_callback;
};

// Runs the steps, checking for cancellation before each and calling the step callback after each;
// records step times and the step count in `result`. Returns false when the run was stopped
// (result.stopped is then set).
bool run_denoising_loop(const DenoisingLoop& loop, const GenerationControl& control, GenerationResult& result);

// Classifier-free guidance: out = u + g (c - u) for a prediction laid out [uncond x count ; cond x count],
// or a plain copy of the first `count` values without guidance.
void apply_guidance(const float* prediction, size_t count, bool with_guidance, float guidance_scale, float* out);

// Inpainting with a model that does not take the mask: keeps the input image outside it,
// latent = (1 - m) * image_noised + m * latent, with m[k % mask_period] (the mask repeats over channels).
void blend_outside_mask(float* latent, const float* image_noised, const float* mask, size_t count, size_t mask_period);

// After the loop: unless it was stopped, decodes `latent` into result.images (timed); records the total.
void finish_generation(bool completed, const std::function<ov::Tensor()>& decode, Clock::time_point start, GenerationResult& result);

// Runs the denoiser (UNet or transformer), recording its time in result.metrics.denoiser_ms and
// turning OpenVINO's failure into an ERR_RUNTIME naming `what`.
void infer_denoiser(ov::InferRequest& request, GenerationResult& result, const char* what);

}  // namespace ovd
