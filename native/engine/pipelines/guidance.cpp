#include "pipelines/guidance.hpp"

#include <algorithm>
#include <cmath>

namespace ovd {

void apply_guidance(const float* prediction, size_t count, bool with_guidance, float guidance_scale, float* out) {
    if (!with_guidance) {
        std::copy_n(prediction, count, out);
        return;
    }
    const float* uncond = prediction;
    const float* cond = prediction + count;
    for (size_t k = 0; k < count; ++k) out[k] = uncond[k] + guidance_scale * (cond[k] - uncond[k]);
}

void apply_guidance_norm_rescale(const float* prediction, size_t count, float guidance_scale, size_t width, float* out) {
    apply_guidance(prediction, count, true, guidance_scale, out);
    const float* cond = prediction + count;
    auto norm = [width](const float* x) {
        float squares = 0.0f;
        for (size_t k = 0; k < width; ++k) squares += x[k] * x[k];
        return std::sqrt(squares);
    };
    for (size_t token = 0; token + width <= count; token += width) {
        const float ratio = norm(cond + token) / norm(out + token);
        for (size_t k = 0; k < width; ++k) out[token + k] *= ratio;
    }
}

void rescale_guidance(const float* cond, size_t count, size_t images, float phi, float* out) {
    const size_t per_image = count / images;
    // Population or sample deviation alike: only their ratio is used.
    auto deviation = [per_image](const float* x) {
        double sum = 0, squares = 0;
        for (size_t k = 0; k < per_image; ++k) sum += x[k];
        const double mean = sum / static_cast<double>(per_image);
        for (size_t k = 0; k < per_image; ++k) squares += (x[k] - mean) * (x[k] - mean);
        return std::sqrt(squares / static_cast<double>(per_image));
    };
    for (size_t i = 0; i < images; ++i) {
        float* guided = out + i * per_image;
        const double std_guided = deviation(guided);
        if (std_guided == 0) continue;  // a constant prediction has nothing to rescale
        const double factor = phi * deviation(cond + i * per_image) / std_guided + (1.0 - phi);
        for (size_t k = 0; k < per_image; ++k) guided[k] = static_cast<float>(guided[k] * factor);
    }
}

void blend_outside_mask(float* latent, const float* image_noised, const float* mask, size_t count, size_t mask_period) {
    for (size_t k = 0; k < count; ++k) {
        const float m = mask[k % mask_period];
        latent[k] = (1.0f - m) * image_noised[k] + m * latent[k];
    }
}

}  // namespace ovd
