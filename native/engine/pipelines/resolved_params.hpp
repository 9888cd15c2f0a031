#pragma once
// Resolving and validating one call's parameters against a family's defaults and static shapes:
// what every pipeline family shares before its own maths.
#include <optional>
#include <string>

#include "models/autoencoder_kl.hpp"
#include "pipelines/diffusion_model.hpp"
#include "pipelines/generation_params.hpp"

namespace ovd {

// The VAE's static shapes for a pipeline's static shapes (none when the pipeline is dynamic).
std::optional<StaticImages> vae_static_images(const std::optional<StaticShape>& shape);

// A call's parameters with the model's defaults filled in.
struct ResolvedParams {
    Task task = Task::Text2Image;
    const GenerationParams* params = nullptr;
    size_t width = 0, height = 0, steps = 0, batch = 1;
    float guidance = 0, strength = 1;
    float guidance_rescale = 0;  // 0: off
};

// The shape a resolved call runs at (what validate() reports).
inline CallShape call_shape(const ResolvedParams& r) { return CallShape{r.width, r.height, r.batch, r.steps}; }

// What a family uses where the caller leaves a parameter unset.
struct FamilyDefaults {
    float guidance_scale = 7.5f;
    int64_t steps = 50;
    float strength = 1.0f;
    size_t width = 0, height = 0;              // 0: no default, the caller must give them
    bool image2image_size_from_image = false;  // image-to-image: the input's size rounded down to size_multiple
    // A reshaped model: its size, image count and guidance are the defaults, and other sizes or counts
    // are refused.
    const StaticShape* static_shape = nullptr;
    bool unet_family = false;  // SD 1.x/2.x, SDXL, LCM: guidance_rescale and deepcache_interval apply
};

// Checks static shapes at load: a positive size divisible by `size_multiple`, at least one image and
// a finite guidance scale.
void check_static_shape(const StaticShape& shape, size_t size_multiple, const std::string& size_rule);

// Throws invalid_argument when a call's classifier-free guidance (`do_cfg`) differs from the one the
// static shapes were made for (`static_cfg`): the denoiser's batch would not fit. No-op without them. `threshold` is
// the family's guidance rule: guidance is on above it.
void check_static_guidance(const StaticShape* shape, bool static_cfg, bool do_cfg, float guidance, float threshold = 1.0f);

// Throws invalid_argument unless a call on static shapes encodes at the `static_length` tokens the text encoder was
// compiled for.
void check_static_sequence_length(size_t max_sequence_length, size_t static_length);

// Throws invalid_argument unless the images fit the task: image-to-image and inpainting need an
// RGB u8 [1,H,W,3] image, inpainting a [1,H,W,1|3] mask of the image's size; text-to-image takes none.
void check_image_inputs(Task task, const ImageInputs& images);

// Checks the images, applies `defaults` and validates what all families share: at least one step
// and one image, a positive size divisible by `size_multiple` (`size_rule` says why, e.g. "the VAE
// scale factor"), a finite guidance scale, strength in [0,1] and exactly 1 for text-to-image, and
// the size and image count of static shapes.
ResolvedParams resolve_common(Task task, const GenerationParams& params, const ImageInputs& images, const FamilyDefaults& defaults,
                              size_t size_multiple, const std::string& size_rule);

// A call's result before its images: the size and seed it ran with and the scheduler's name.
GenerationResult result_for_call(const ResolvedParams& r, SchedulerType scheduler);

// The refusals that families with one text encoder and no inpainting pipeline (as the oracle) share; each names the
// `family` (e.g. "Qwen-Image") in its message.
// Throws unless `supported`: inpainting has no pipeline; image-to-image needs the folder's vae_encoder.
void check_task_supported(bool supported, Task task, const std::string& family, const std::string& class_name);
// True classifier-free guidance: a negative prompt is refused unless guidance_scale is above 1.
void check_negative_prompt_guided(const GenerationParams& p, float guidance);
// One text encoder: prompt_2 and prompt_3 are refused (use prompt).
void refuse_extra_prompts(const GenerationParams& p, const std::string& family);
// One text encoder: negative_prompt_2 and negative_prompt_3 are refused (use negative_prompt).
void refuse_extra_negative_prompts(const GenerationParams& p, const std::string& family);
// The family has no TaylorSeer cache: taylorseer is refused.
void refuse_taylorseer(const GenerationParams& p, const std::string& family);
// The family runs FlowMatchEulerDiscrete only: any other scheduler is refused.
void check_flow_match_scheduler(const GenerationParams& p, const std::string& family);
// max_sequence_length, when set, in [min, max]; `limit` ends the range in the message (e.g. " for Qwen-Image").
void check_max_sequence_length(const GenerationParams& p, int64_t min, int64_t max, const std::string& limit);

// The binarized full-size mask [1,1,H,W] -> the same, after checking that it repaints something
// (an all-black mask is refused rather than returning the input).
const ov::Tensor& check_mask_not_empty(const ov::Tensor& mask_condition);

}  // namespace ovd
