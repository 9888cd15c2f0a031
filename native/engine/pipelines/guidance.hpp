#pragma once
// The per-step maths around the denoiser that every family shares: classifier-free guidance, guidance rescale and
// blending outside an inpainting mask. Plain float arrays, no OpenVINO, so the unit tests build it alone.
#include <cstddef>

namespace ovd {

// Classifier-free guidance: out = u + g (c - u) for a prediction laid out [uncond x count ; cond x count],
// or a plain copy of the first `count` values without guidance.
void apply_guidance(const float* prediction, size_t count, bool with_guidance, float guidance_scale, float* out);

// Qwen-Image's true classifier-free guidance: out = u + g (c - u) as apply_guidance, then every token (`width`
// consecutive values) scaled to the norm of the conditional prediction, out *= |c| / |out|, each norm the square
// root of a float sum of squares taken in order (as the oracle; a pairwise or double sum is off in the last bit).
void apply_guidance_norm_rescale(const float* prediction, size_t count, float guidance_scale, size_t width, float* out);

// Guidance rescale (Lin et al. 2023, arXiv 2305.08891): per image, the guided prediction is scaled to the standard
// deviation of the text-conditioned one and mixed back, out = phi * out * std(cond) / std(out) + (1 - phi) * out,
// against the over-exposure that strong guidance gives. `count` values per batch, `images` images in it.
void rescale_guidance(const float* cond, size_t count, size_t images, float phi, float* out);

// Inpainting with a model that does not take the mask: keeps the input image outside it,
// latent = (1 - m) * image_noised + m * latent, with m[k % mask_period] (the mask repeats over channels).
void blend_outside_mask(float* latent, const float* image_noised, const float* mask, size_t count, size_t mask_period);

}  // namespace ovd
