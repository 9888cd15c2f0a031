#pragma once
// Qwen-Image (QwenImagePipeline): Qwen2.5-VL's language model as the text encoder behind a fixed system-prompt
// template, an MMDiT transformer over packed 2x2 latent tokens with a text mask, the causal 3-D VAE run on one frame
// with per-channel latent statistics, and flow-matching Euler with FLUX.1's linear shift and a terminal stretch.
// True classifier-free guidance (with a per-token norm rescale) only with a negative prompt and guidance_scale > 1.
// Text-to-image and image-to-image (SDEdit with strength, at the size asked for or the default size, one image per
// call, as the oracle); no inpainting, as the oracle. LoRA adapters on the transformer, as the oracle.
#include <optional>
#include <string>

#include "base/model_folder.hpp"
#include "models/autoencoder_kl_qwen_image.hpp"
#include "models/qwen3_text_encoder.hpp"
#include "pipelines/flow_transformer_pipeline.hpp"

namespace ovd {

class QwenImagePipeline : public FlowTransformerPipeline {
public:
    QwenImagePipeline(const ModelFolder& folder, const LoadConfig& load_config);

    // Takes an unpacked, still normalised latent [N,C,h,w]: what the step callback receives.
    ov::Tensor decode(const ov::Tensor& latent) const override;
    bool supports(Task task) const override;

protected:
    GenerationResult run(Task task, const GenerationParams& params, const ImageInputs& images,
                         const GenerationControl& control) const override;

private:
    ResolvedParams resolve(Task task, const GenerationParams& params, const ImageInputs& images,
                           size_t& max_sequence_length) const override;
    // The prompt's embedding [L, D], L <= max_sequence_length: the template's tokens after its 34-token prefix.
    ov::Tensor encode_prompt(const std::string& prompt, size_t max_sequence_length) const;
    std::string size_rule() const;
    // Whether the static shapes (if any) were made for guidance above 1: the text encoder's batch is then 2.
    bool static_guided() const;

    std::optional<StaticShape> static_shape_;  // set: every submodel compiled for these shapes
    size_t latent_channels_ = 16;
    std::shared_ptr<Qwen3TextEncoder> text_encoder_;
    Transformer transformer_;
    std::shared_ptr<AutoencoderKLQwenImage> vae_;
};

}  // namespace ovd
