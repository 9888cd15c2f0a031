#pragma once
// Stable Diffusion 3 (StableDiffusion3Pipeline, with or without the T5 encoder, and
// StableDiffusion3InpaintPipeline): two CLIP encoders plus T5, an MMDiT transformer with
// classifier-free guidance, and the flow-matching Euler scheduler.
#include "base/model_folder.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/clip_text_encoder.hpp"
#include "models/t5_encoder.hpp"
#include "pipelines/diffusion_model.hpp"
#include "schedulers/scheduler.hpp"

namespace ovd {

struct ResolvedParams;

class StableDiffusion3Pipeline : public DiffusionModel {
public:
    StableDiffusion3Pipeline(const ModelFolder& folder, const LoadConfig& load_config);

    ov::Tensor decode(const ov::Tensor& latent) const override { return vae_->decode(latent); }
    bool supports(Task task) const override;
    CallShape validate(Task task, const GenerationParams& params, const ImageInputs& images) const override;

    bool has_t5() const { return t5_ != nullptr; }

protected:
    GenerationResult run(Task task, const GenerationParams& params, const ImageInputs& images,
                         const GenerationControl& control) const override;

private:
    struct Conditioning;  // encoder_hidden_states and pooled_projections, rows [negative x N ; positive x N]

    ResolvedParams resolve(Task task, const GenerationParams& params, const ImageInputs& images, bool& do_cfg,
                           size_t& max_sequence_length) const;
    Conditioning encode_prompts(const ResolvedParams& r, bool do_cfg, size_t max_sequence_length, GenerationMetrics& metrics) const;

    bool inpainting_only_ = false;             // StableDiffusion3InpaintPipeline
    std::optional<StaticShape> static_shape_;  // set: every submodel compiled for these shapes
    bool static_cfg_ = false;                  // the static shapes hold the CFG batch (2 x N)
    size_t sample_size_ = 128, patch_size_ = 2, in_channels_ = 16, joint_attention_dim_ = 4096;
    Json scheduler_config_;
    std::string scheduler_source_;
    std::shared_ptr<ClipTextEncoder> text_encoder_, text_encoder_2_;  // CLIP-L and CLIP-G, with projection
    std::shared_ptr<T5Encoder> t5_;                                   // null: the folder has no text_encoder_3
    std::shared_ptr<IrModel> transformer_;
    std::shared_ptr<AutoencoderKL> vae_;
    std::unique_ptr<AdapterSet> adapters_;
    std::shared_ptr<LoraController> transformer_lora_;  // null without adapters (or in fuse mode)
};

}  // namespace ovd
