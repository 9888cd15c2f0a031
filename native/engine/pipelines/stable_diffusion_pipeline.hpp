#pragma once
// UNet pipelines: Stable Diffusion 1.x/2.x, LCM and SDXL (and their dedicated inpainting variants).
#include "base/model_folder.hpp"
#include "base/random_generator.hpp"
#include "lora/adapter_set.hpp"
#include "models/autoencoder_kl.hpp"
#include "models/clip_text_encoder.hpp"
#include "pipelines/diffusion_model.hpp"
#include "schedulers/scheduler.hpp"

namespace ovd {

class StableDiffusionPipeline : public DiffusionModel {
public:
    StableDiffusionPipeline(const ModelFolder& folder, const LoadConfig& load_config);

    ov::Tensor decode(const ov::Tensor& latent) const override { return vae_->decode(latent); }
    bool supports(Task task) const override;
    CallShape validate(Task task, const GenerationParams& params, const ImageInputs& images) const override;

protected:
    GenerationResult run(Task task, const GenerationParams& params, const ImageInputs& images,
                         const GenerationControl& control) const override;

private:
    struct Resolved;          // params with the model's defaults filled in
    struct UNetConditioning;  // the UNet's per-call constant inputs
    struct InitialState;      // starting latent, noise, and inpainting inputs

    Resolved resolve(Task task, const GenerationParams& params, const ImageInputs& images) const;
    InitialState prepare_latents(const Resolved& r, const ImageInputs& images, const Scheduler& scheduler, int64_t first_timestep,
                                 RandomGenerator& rng, GenerationMetrics& metrics) const;
    UNetConditioning encode_prompts(const Resolved& r, GenerationMetrics& metrics) const;
    UNetConditioning encode_prompts_xl(const Resolved& r, GenerationMetrics& metrics) const;

    bool is_xl_ = false;
    bool force_zeros_for_empty_prompt_ = true;
    bool dedicated_inpainting_ = false;  // 9-channel UNet
    size_t unet_in_channels_ = 4;
    size_t unet_sample_size_ = 0;
    int64_t time_cond_proj_dim_ = -1;          // >= 0: LCM (guidance embedded, no CFG)
    std::optional<StaticShape> static_shape_;  // set: every submodel compiled for these shapes
    bool static_cfg_ = false;                  // the static shapes hold the CFG batch (2 x N)
    Json scheduler_config_;
    std::string scheduler_source_;
    std::shared_ptr<ClipTextEncoder> text_encoder_;    // CLIP-L (SD: the only one)
    std::shared_ptr<ClipTextEncoder> text_encoder_2_;  // SDXL: CLIP-G with projection
    std::shared_ptr<IrModel> unet_;
    std::unique_ptr<AdapterSet> adapters_;
    std::shared_ptr<LoraController> unet_lora_;
    std::shared_ptr<IrModel> unet_shallow_;  // DeepCache's shallow UNet, when loaded with deepcache_branch
    std::shared_ptr<AutoencoderKL> vae_;
};

}  // namespace ovd
