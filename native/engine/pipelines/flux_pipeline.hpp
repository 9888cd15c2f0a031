#pragma once
// FLUX.1 (FluxPipeline: schnell-style without guidance embedding, dev-style with it;
// FluxInpaintPipeline; FluxFillPipeline with its dedicated fill transformer): CLIP pooled + T5
// conditioning, a transformer over packed 2x2 latent tokens, no classifier-free guidance, and the
// flow-matching Euler scheduler with its resolution-dependent shift.
#include "base/model_folder.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/clip_text_encoder.hpp"
#include "models/t5_encoder.hpp"
#include "pipelines/flow_transformer_pipeline.hpp"

namespace ovd {

class FluxPipeline : public FlowTransformerPipeline {
public:
    FluxPipeline(const ModelFolder& folder, const LoadConfig& load_config);

    // Takes an unpacked latent [N,C,h,w], which is also what the step callback receives.
    ov::Tensor decode(const ov::Tensor& latent) const override;
    bool supports(Task task) const override;

    bool is_fill() const { return fill_; }
    bool has_guidance_embeds() const { return guidance_embeds_; }

protected:
    GenerationResult run(Task task, const GenerationParams& params, const ImageInputs& images,
                         const GenerationControl& control) const override;

private:
    ResolvedParams resolve(Task task, const GenerationParams& params, const ImageInputs& images,
                           size_t& max_sequence_length) const override;

    bool fill_ = false;                              // FluxFillPipeline: inpainting only, fill transformer
    bool inpainting_only_ = false;                   // FluxInpaintPipeline, FluxFillPipeline
    bool guidance_embeds_ = false;                   // the transformer takes a `guidance` input (FLUX.1-dev)
    size_t in_channels_ = 64;                        // transformer input features per token
    size_t latent_channels_ = 16;                    // channels of the unpacked latent
    std::optional<StaticShape> static_shape_;        // set: every submodel compiled for these shapes
    std::shared_ptr<ClipTextEncoder> text_encoder_;  // CLIP-L: pooled output only
    std::shared_ptr<T5Encoder> t5_;                  // text_encoder_2
    std::shared_ptr<IrModel> transformer_;
    std::shared_ptr<AutoencoderKL> vae_;
    std::unique_ptr<AdapterSet> adapters_;
    std::shared_ptr<LoraController> transformer_lora_;  // null without adapters (or in fuse mode)
};

}  // namespace ovd
