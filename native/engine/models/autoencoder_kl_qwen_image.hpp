#pragma once
// Qwen-Image's VAE (AutoencoderKLQwenImage): a causal 3-D (video) VAE run on one frame. The exported decoder takes
// latents [N, C, frames, h, w] and ends with a clamp to [-1, 1]; the per-channel latent statistics (latents_mean,
// latents_std) are not in the IR but in vae_decoder/config.json. The encoder (image-to-image) takes [N, 3, frames, H, W]
// and gives the distribution (mean, log-variance) as `latent_parameters`.
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"
#include "models/autoencoder_kl.hpp"

namespace ovd {

class RandomGenerator;

class AutoencoderKLQwenImage {
public:
    // Reads vae_decoder/ (IR and config: z_dim, temperal_downsample, latents_mean, latents_std). `fixed` compiles the
    // decoder for that many images of that size (static shapes), the encoder for one.
    static std::shared_ptr<AutoencoderKLQwenImage> load(const ModelFolder& folder, const std::string& device, const PropertyMap& properties,
                                                        const std::optional<StaticImages>& fixed = std::nullopt);

    // A normalised latent f32 [N, C, h, w] (what the denoiser works on) -> RGB u8 [N, H, W, 3]: per channel
    // z * std + mean, decoded as one frame, then floor((x / 2 + 1 / 2) * 255) as the oracle (non-finite values give 0).
    ov::Tensor decode(const ov::Tensor& latent) const;

    // An image f32 [1, 3, H, W] in [-1, 1] -> the normalised latent [1, C, H/s, W/s]: encoded as one frame, sampled
    // with `rng` (one draw of C x h x w; std = expf(logvar / 2) in float, as the oracle), then (z - mean) * (1 / std).
    // The encoder is compiled on the first call.
    ov::Tensor encode(const ov::Tensor& image, RandomGenerator& rng) const;
    bool has_encoder() const { return !encoder_xml_.empty(); }

    size_t scale_factor() const { return scale_factor_; }
    size_t latent_channels() const { return mean_.size(); }

private:
    std::shared_ptr<IrModel> decoder_;
    std::string encoder_xml_, encoder_device_;
    PropertyMap encoder_properties_;
    std::optional<StaticImages> fixed_;
    mutable std::once_flag encoder_once_;
    mutable std::shared_ptr<IrModel> encoder_;
    size_t scale_factor_ = 8;
    std::vector<float> mean_, std_;
};

}  // namespace ovd
