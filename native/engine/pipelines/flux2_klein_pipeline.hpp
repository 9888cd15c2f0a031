#pragma once
// FLUX.2 klein (Flux2KleinPipeline): a Qwen3 text encoder read at three hidden layers, a transformer over packed 2x2
// latent tokens with 4-axis positions, the FLUX.2 VAE whose latents are batch-normalised in the packed space, and
// flow-matching Euler with FLUX.2's empirical shift; static shapes as the oracle's reshape. Image-to-image is reference-image conditioning
// (the input's latent tokens ride along with the noise tokens), not SDEdit: strength has no effect. No inpainting, as the oracle.
// LoRA adapters on the transformer, as the oracle.
#include <mutex>
#include <optional>
#include <vector>

#include "base/model_folder.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/qwen3_text_encoder.hpp"
#include "pipelines/flow_transformer_pipeline.hpp"

namespace ovd {

class Flux2KleinPipeline : public FlowTransformerPipeline {
public:
    Flux2KleinPipeline(const ModelFolder& folder, const LoadConfig& load_config);

    // Takes an unpacked, still batch-normalised latent [N,C,h,w]: what the step callback receives.
    ov::Tensor decode(const ov::Tensor& latent) const override;
    bool supports(Task task) const override;

protected:
    GenerationResult run(Task task, const GenerationParams& params, const ImageInputs& images,
                         const GenerationControl& control) const override;

private:
    ResolvedParams resolve(Task task, const GenerationParams& params, const ImageInputs& images,
                           size_t& max_sequence_length) const override;
    // The prompt's embedding [max_sequence_length, D]: the encoder's three hidden layers side by side.
    ov::Tensor encode_prompt(const std::string& prompt, size_t max_sequence_length) const;
    // The input image at the output size as packed, normalised latent tokens [1, (h/2)(w/2), 4C].
    ov::Tensor reference_tokens(const ov::Tensor& image, size_t height, size_t width) const;
    // In place over packed tokens [..., 4C]: (x - mean) / std, or back with x * std + mean.
    void normalize_packed(ov::Tensor& packed) const;
    void denormalize_packed(ov::Tensor& packed) const;
    // Whether the static shapes (if any) were made for classifier-free guidance: its batch is then doubled.
    bool static_guided() const;
    // The transformer, compiled for `token_grids` grids of image tokens under static shapes (1: text-to-image,
    // 2: image-to-image, noise and reference); dynamic without them.
    Transformer compile_transformer(int64_t token_grids) const;
    const Transformer& transformer_for(Task task) const;

    bool distilled_ = true;                        // model_index.json is_distilled: no classifier-free guidance
    size_t latent_channels_ = 0;                   // the VAE's
    std::optional<StaticShape> static_shape_;      // set: every submodel compiled for these shapes
    std::vector<float> latent_mean_, latent_std_;  // per packed channel, from the VAE's batch-norm statistics
    std::shared_ptr<Qwen3TextEncoder> text_encoder_;
    Transformer transformer_;
    std::string transformer_xml_, denoiser_device_;
    PropertyMap denoiser_properties_;
    mutable std::once_flag reference_transformer_once_;
    mutable Transformer reference_transformer_;  // image-to-image on static shapes
    std::shared_ptr<AutoencoderKL> vae_;
};

}  // namespace ovd
