#pragma once
// Cheap previews: a linear map from a latent pixel's channels to an RGB colour, fitted by least squares to one
// VAE decode of a synthetic latent. A preview then costs a few multiply-adds per pixel instead of a VAE decode.
// It works for any VAE (4-channel SD/SDXL, 16-channel SD3/FLUX latents, as the step callback sees them).
#include <functional>
#include <vector>

#include "base/openvino_core.hpp"

namespace ovd {

class LatentPreview {
public:
    using Decode = std::function<ov::Tensor(const ov::Tensor&)>;  // latent f32 [N,C,h,w] -> RGB u8 [N,H,W,3]

    // Decodes one deterministic synthetic latent of `latent_shape` (smooth random fields, as denoised latents are
    // mostly smooth) and fits rgb = W z + b on its VAE-scale-sized blocks.
    static LatentPreview fit(const Decode& decode, const ov::Shape& latent_shape);

    // Latent f32 [N,C,h,w] -> RGB u8 [N, h * scale, w * scale, 3], the size the VAE would give, upscaled bilinearly.
    ov::Tensor render(const ov::Tensor& latent) const;

    size_t channels() const { return m_channels; }
    size_t scale() const { return m_scale; }

private:
    size_t m_channels = 0, m_scale = 1;
    std::vector<double> m_weights;  // per colour: C weights then the bias, in [0, 1] colour units
};

}  // namespace ovd
