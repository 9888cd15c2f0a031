#pragma once
// The VAE (AutoencoderKL): decode latents to RGB u8 images, encode images to latents.
#include <memory>
#include <mutex>
#include <optional>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"

namespace ovd {

class RandomGenerator;

// Static shapes for the VAE: `count` latents of `height` x `width` pixels decoded at once.
struct StaticImages {
    size_t count, height, width;
};

class AutoencoderKL {
public:
    // Loads vae_decoder now; vae_encoder (when `with_encoder`) is compiled on first use, so a model used
    // only for text-to-image holds no encoder, as openvino_genai's Text2ImagePipeline. All parameters come from
    // vae_decoder/config.json, as in the oracle. With `fixed`, the decoder is compiled for latents
    // [count, C, height/s, width/s], as the oracle's reshape does, and the encoder for images
    // [1, 3, height, width] (the oracle uses batch `count` there, which its batch-1 encode then
    // cannot feed; we encode one image, as it does).
    static std::shared_ptr<AutoencoderKL> load(const ModelFolder& folder, bool with_encoder, const std::string& device,
                                               const PropertyMap& properties, const std::optional<StaticImages>& fixed = std::nullopt);

    // Latent f32 [N,C,h,w] -> RGB u8 [N,H,W,3]. Scaling, clamping and the u8 conversion are part of the
    // compiled graph, as in the oracle, so the rounding is OpenVINO's.
    ov::Tensor decode(const ov::Tensor& latent) const;
    // Image f32 [1,3,H,W] in [-1,1] -> latent f32 [1,C,H/s,W/s], (z - shift) * scaling. An encoder that
    // outputs the distribution (`latent_parameters`) is sampled with `rng`, as the oracle does.
    ov::Tensor encode(const ov::Tensor& image, RandomGenerator& rng) const;
    // The same without sampling: the distribution's mean (as FLUX.2 klein encodes its reference image), scaled.
    ov::Tensor encode_mean(const ov::Tensor& image) const;
    bool has_encoder() const { return !encoder_xml_.empty(); }

    size_t scale_factor() const { return scale_factor_; }
    // The scale factor a folder's VAE will have, before loading it.
    static size_t scale_factor_of(const ModelFolder& folder);
    size_t latent_channels() const { return latent_channels_; }
    float scaling_factor() const { return scaling_factor_; }
    float shift_factor() const { return shift_factor_; }

private:
    IrModel& encoder() const;  // compiles it on the first call
    // The encoder's output 0 and whether it is a distribution (`latent_parameters`: mean then log-variance).
    ov::Tensor run_encoder(const ov::Tensor& image, bool& is_distribution) const;
    void scale_latent(ov::Tensor& latent) const;  // (z - shift) * scaling, in place

    std::shared_ptr<IrModel> decoder_;
    std::string encoder_xml_, encoder_device_;
    PropertyMap encoder_properties_;
    std::optional<StaticImages> fixed_;
    mutable std::once_flag encoder_once_;
    mutable std::shared_ptr<IrModel> encoder_;
    size_t scale_factor_ = 8;
    size_t latent_channels_ = 4;
    float scaling_factor_ = 1.0f;
    float shift_factor_ = 0.0f;
};

}  // namespace ovd
