#pragma once
// Qwen-Image's VAE (AutoencoderKLQwenImage): a causal 3-D (video) VAE run on one frame. The exported decoder takes
// latents [N, C, frames, h, w] and ends with a clamp to [-1, 1]; the per-channel latent statistics (latents_mean,
// latents_std) are not in the IR but in vae_decoder/config.json. Decoding only (text-to-image).
#include <memory>
#include <vector>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"

namespace ovd {

class AutoencoderKLQwenImage {
public:
    // Reads vae_decoder/ (IR and config: z_dim, temperal_downsample, latents_mean, latents_std).
    static std::shared_ptr<AutoencoderKLQwenImage> load(const ModelFolder& folder, const std::string& device,
                                                        const PropertyMap& properties);

    // A normalised latent f32 [N, C, h, w] (what the denoiser works on) -> RGB u8 [N, H, W, 3]: per channel
    // z * std + mean, decoded as one frame, then floor((x / 2 + 1 / 2) * 255) as the oracle (non-finite values give 0).
    ov::Tensor decode(const ov::Tensor& latent) const;

    size_t scale_factor() const { return scale_factor_; }
    size_t latent_channels() const { return mean_.size(); }

private:
    std::shared_ptr<IrModel> decoder_;
    size_t scale_factor_ = 8;
    std::vector<float> mean_, std_;
};

}  // namespace ovd
