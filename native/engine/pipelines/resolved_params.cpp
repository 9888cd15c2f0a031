#include "pipelines/resolved_params.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "base/errors.hpp"

namespace ovd {

void check_image_inputs(Task task, const ImageInputs& images) {
    if (task != Task::Text2Image && !images.image) throw invalid_param("image", std::string(task_name(task)) + " needs an input image");
    if (task == Task::Inpainting && !images.mask) throw invalid_param("mask", "inpainting needs a mask");
    if (task == Task::Text2Image && images.image) throw invalid_param("image", "text-to-image takes no input image");
    if (task != Task::Inpainting && images.mask) throw invalid_param("mask", "a mask applies to inpainting only");
    for (const ov::Tensor* t : {&images.image, &images.mask}) {
        if (!*t) continue;
        const ov::Shape& s = t->get_shape();
        if (t->get_element_type() != ov::element::u8 || s.size() != 4 || s[0] != 1 || (s[3] != 3 && !(t == &images.mask && s[3] == 1)))
            throw invalid_param(t == &images.mask ? "mask" : "image", "images must be u8 [1,H,W,3] and masks u8 [1,H,W,3] or [1,H,W,1]");
    }
    if (images.image && images.mask &&
        (images.image.get_shape()[1] != images.mask.get_shape()[1] || images.image.get_shape()[2] != images.mask.get_shape()[2]))
        throw invalid_param("mask", "the image and the mask must have the same size");
}

ResolvedParams resolve_common(Task task, const GenerationParams& p, const ImageInputs& images, const FamilyDefaults& defaults,
                              size_t size_multiple, const std::string& size_rule) {
    check_image_inputs(task, images);
    ResolvedParams r;
    r.task = task;
    r.params = &p;
    r.guidance = p.guidance_scale.value_or(defaults.guidance_scale);
    r.steps = static_cast<size_t>(p.num_inference_steps.value_or(defaults.steps));
    r.strength = p.strength.value_or(defaults.strength);

    size_t default_width = defaults.width, default_height = defaults.height;
    if (task == Task::Image2Image && defaults.image2image_size_from_image) {
        default_height = images.image.get_shape()[1] / size_multiple * size_multiple;
        default_width = images.image.get_shape()[2] / size_multiple * size_multiple;
    }
    const StaticShape* fixed = defaults.static_shape;
    if (fixed) {
        default_width = static_cast<size_t>(fixed->width);
        default_height = static_cast<size_t>(fixed->height);
        if (!p.guidance_scale && fixed->guidance_scale) r.guidance = *fixed->guidance_scale;
    }
    r.width = p.width ? static_cast<size_t>(*p.width) : default_width;
    r.height = p.height ? static_cast<size_t>(*p.height) : default_height;

    if (p.num_inference_steps && *p.num_inference_steps < 1)
        throw invalid_param("num_inference_steps", "num_inference_steps must be at least 1");
    if (p.num_images_per_prompt && *p.num_images_per_prompt < 1)
        throw invalid_param("num_images_per_prompt", "num_images_per_prompt must be at least 1");
    r.batch = static_cast<size_t>(p.num_images_per_prompt.value_or(fixed ? fixed->num_images_per_prompt : 1));
    if ((p.width && *p.width <= 0) || (p.height && *p.height <= 0))
        throw invalid_param(p.width && *p.width <= 0 ? "width" : "height", "width and height must be positive");
    if ((r.width == 0 || r.height == 0) && task == Task::Image2Image && defaults.image2image_size_from_image)
        throw invalid_param("image", "the input image is smaller than " + std::to_string(size_multiple) +
                                         " pixels on a side, so it gives no output size; give width and height (" + size_rule + ")");
    if (r.width == 0 || r.height == 0) throw invalid_param("width", "width and height must be given: the model config has no default size");
    if (r.width % size_multiple || r.height % size_multiple)
        throw invalid_param(r.width % size_multiple ? "width" : "height", "width and height must be divisible by " +
                                                                              std::to_string(size_multiple) + " (" + size_rule + "); got " +
                                                                              std::to_string(r.width) + "x" + std::to_string(r.height));
    if (!std::isfinite(r.guidance)) throw invalid_param("guidance_scale", "guidance_scale must be a finite number");
    if (task == Task::Text2Image && r.strength != 1.0f)
        throw invalid_param("strength", "strength applies to image-to-image and inpainting only");
    if (!(r.strength >= 0.0f && r.strength <= 1.0f)) throw invalid_param("strength", "strength must be between 0 and 1");
    if (p.guidance_rescale && !defaults.unet_family)
        throw invalid_param("guidance_rescale", "guidance_rescale applies to UNet models (SD 1.x/2.x, SDXL) only");
    if (p.deepcache_interval && !defaults.unet_family)
        throw invalid_param("deepcache_interval", "deepcache_interval applies to UNet models (SD 1.x/2.x, SDXL, LCM) only");
    r.guidance_rescale = p.guidance_rescale.value_or(0.0f);
    if (fixed) {
        const std::string size = std::to_string(fixed->width) + "x" + std::to_string(fixed->height);
        if (r.width != static_cast<size_t>(fixed->width) || r.height != static_cast<size_t>(fixed->height))
            throw invalid_param(r.width != static_cast<size_t>(fixed->width) ? "width" : "height",
                                "this model was reshaped to static shapes for " + size + " images; leave width and height unset or give " +
                                    size + "; got " + std::to_string(r.width) + "x" + std::to_string(r.height));
        if (r.batch != static_cast<size_t>(fixed->num_images_per_prompt))
            throw invalid_param("num_images_per_prompt", "this model was reshaped to static shapes for num_images_per_prompt " +
                                                             std::to_string(fixed->num_images_per_prompt) +
                                                             "; leave it unset or give that; got " + std::to_string(r.batch));
    }
    return r;
}

void check_static_shape(const StaticShape& s, size_t size_multiple, const std::string& size_rule) {
    if (s.width <= 0 || s.height <= 0) throw invalid_argument("static shape: width and height must be positive");
    if (s.width % static_cast<int64_t>(size_multiple) || s.height % static_cast<int64_t>(size_multiple))
        throw invalid_argument("static shape: width and height must be divisible by " + std::to_string(size_multiple) + " (" + size_rule +
                               "); got " + std::to_string(s.width) + "x" + std::to_string(s.height));
    if (s.num_images_per_prompt < 1) throw invalid_argument("static shape: num_images_per_prompt must be at least 1");
    if (s.guidance_scale && !std::isfinite(*s.guidance_scale))
        throw invalid_argument("static shape: guidance_scale must be a finite number");
}

void check_static_guidance(const StaticShape* shape, bool static_cfg, bool do_cfg, float guidance, float threshold) {
    if (!shape || static_cfg == do_cfg) return;
    std::ostringstream g, t;
    g << guidance;
    t << threshold;
    throw invalid_param("guidance_scale", static_cfg
                                              ? "this model was reshaped for classifier-free guidance (guidance_scale above " + t.str() +
                                                    " at load: its batches hold the unconditional rows), so guidance_scale must be above " +
                                                    t.str() + "; got " + g.str()
                                              : "this model was reshaped without classifier-free guidance (guidance_scale <= " + t.str() +
                                                    " at load), so guidance_scale must be at most " + t.str() + "; got " + g.str());
}

void check_static_sequence_length(size_t max_sequence_length, size_t static_length) {
    if (max_sequence_length != static_length)
        throw invalid_param("max_sequence_length",
                            "this model was reshaped to static shapes with the text encoder compiled for " + std::to_string(static_length) +
                                " tokens; leave max_sequence_length unset or give that; got " + std::to_string(max_sequence_length));
}

const ov::Tensor& check_mask_not_empty(const ov::Tensor& mask_condition) {
    const float* m = mask_condition.data<const float>();
    if (std::none_of(m, m + mask_condition.get_size(), [](float v) { return v != 0.0f; }))
        throw invalid_param("mask", "the mask is empty: no pixel is light enough (gray >= 127.5) to be repainted");
    return mask_condition;
}

std::optional<StaticImages> vae_static_images(const std::optional<StaticShape>& shape) {
    if (!shape) return std::nullopt;
    return StaticImages{static_cast<size_t>(shape->num_images_per_prompt), static_cast<size_t>(shape->height),
                        static_cast<size_t>(shape->width)};
}

GenerationResult result_for_call(const ResolvedParams& r, SchedulerType scheduler) {
    GenerationResult result;
    result.width = r.width;
    result.height = r.height;
    result.seed = r.params->rng_seed;
    result.scheduler = scheduler_type_name(scheduler);
    return result;
}

void check_task_supported(bool supported, Task task, const std::string& family, const std::string& class_name) {
    if (!supported)
        throw invalid_argument(task == Task::Inpainting
                                   ? family + " has no inpainting pipeline (the oracle has none either)"
                                   : class_name + " has no vae_encoder; it cannot run " + std::string(task_name(task)));
}

void check_negative_prompt_guided(const GenerationParams& p, float guidance) {
    if (p.negative_prompt && !(guidance > 1.0f))
        throw invalid_param("negative_prompt",
                            "a negative prompt needs guidance_scale above 1 (the oracle: guidance scale <= 1.0 ignores negative prompt)");
}

void refuse_extra_prompts(const GenerationParams& p, const std::string& family) {
    if (p.prompt_2 || p.prompt_3) throw invalid_param(p.prompt_2 ? "prompt_2" : "prompt_3", family + " has one text encoder: use prompt");
}

void refuse_extra_negative_prompts(const GenerationParams& p, const std::string& family) {
    if (p.negative_prompt_2 || p.negative_prompt_3)
        throw invalid_param(p.negative_prompt_2 ? "negative_prompt_2" : "negative_prompt_3",
                            family + " has one text encoder: use negative_prompt");
}

void refuse_taylorseer(const GenerationParams& p, const std::string& family) {
    if (p.taylorseer || p.disable_taylorseer)
        throw invalid_param("taylorseer", family + " does not use the TaylorSeer cache; leave taylorseer unset");
}

void check_flow_match_scheduler(const GenerationParams& p, const std::string& family) {
    if (p.scheduler != SchedulerType::Auto && p.scheduler != SchedulerType::FlowMatchEulerDiscrete)
        throw invalid_param("scheduler", family + " runs with the FLOW_MATCH_EULER_DISCRETE scheduler only");
}

void check_max_sequence_length(const GenerationParams& p, int64_t min, int64_t max, const std::string& limit) {
    if (p.max_sequence_length && (*p.max_sequence_length < min || *p.max_sequence_length > max))
        throw invalid_param("max_sequence_length", "max_sequence_length must be between " + std::to_string(min) + " and " +
                                                       std::to_string(max) + limit + "; got " + std::to_string(*p.max_sequence_length));
}

}  // namespace ovd
