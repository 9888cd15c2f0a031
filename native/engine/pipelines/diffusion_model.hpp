#pragma once
// The engine's entry point: a loaded model folder that generates images. One instance serves
// several generate() calls at once; each call borrows its own infer requests.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/openvino_core.hpp"
#include "base/weight_files.hpp"
#include "models/latent_preview.hpp"
#include "pipelines/generation_params.hpp"

namespace ovd {

// A LoRA adapter registered at load; generate() calls select among them by name.
struct AdapterSpec {
    std::string name;
    std::string path;    // .safetensors
    float alpha = 1.0f;  // used when a call selects the adapter without an alpha
};

enum class LoraMode {
    Dynamic,  // adapters and alphas chosen per call, no recompilation (the oracle's default)
    Fuse,     // all registered adapters merged into the weights at load: fastest, fixed
};

// Static shapes, as the oracle's reshape(num_images_per_prompt, height, width, guidance_scale): every
// submodel is compiled for one image size, image count and classifier-free-guidance batch. Calls then
// default to these and refuse anything that would need other shapes.
struct StaticShape {
    int64_t width = 0, height = 0;
    int64_t num_images_per_prompt = 1;
    // Only whether it enables classifier-free guidance shapes the models; also the calls' default
    // guidance. Unset: the model's text-to-image default.
    std::optional<float> guidance_scale;
};

// How to load a model folder: devices, compile properties, LoRA adapters and optional static shapes.
struct LoadConfig {
    std::string text_encoder = "CPU";
    std::string denoiser = "CPU";
    std::string vae = "CPU";
    PropertyMap properties;  // passed to every submodel's compile (CACHE_DIR, PERFORMANCE_HINT, ...)
    std::vector<AdapterSpec> adapters;
    LoraMode lora_mode = LoraMode::Dynamic;
    std::optional<StaticShape> static_shape;
    // UNet models: cut the UNet for DeepCache at this branch (models/deepcache_unet.hpp), so that calls may set
    // deepcache_interval; unset: not cut.
    std::optional<size_t> deepcache_branch;
};

// What loading the adapters found: per adapter, the layers it modifies and the keys it could not place.
struct AdapterReport {
    std::string name;
    size_t matched = 0;
    std::vector<std::string> unmatched;  // normalized keys that modify no layer of this model
};

enum class Task { Text2Image, Image2Image, Inpainting };

// How a step preview is made: the model's own VAE decode, or the fitted latent-to-RGB map (LatentPreview).
enum class PreviewMode { Full, Fast };
const char* task_name(Task task);

// Optional image inputs: RGB u8 [1,H,W,3]; mask u8 [1,H,W,1] or [1,H,W,3] (white = repaint).
struct ImageInputs {
    ov::Tensor image;
    ov::Tensor mask;
};

// The size, image count and step count a call resolves to once the model's defaults apply (e.g. the
// input's size for image-to-image): what generate() would run, so callers can apply their own limits.
struct CallShape {
    size_t width = 0, height = 0, batch = 1, steps = 0;
};

class DiffusionModel {
public:
    virtual ~DiffusionModel() = default;

    // Runs the call; refuses (ERR_MODEL_CHANGED) if a weight file was changed in place since the load, and stops at
    // the next step if another process starts to rewrite one (base/weight_files.hpp).
    GenerationResult generate(Task task, const GenerationParams& params, const ImageInputs& images, const GenerationControl& control) const;
    // Decodes a latent (e.g. one passed to a step callback) to RGB u8 images.
    virtual ov::Tensor decode(const ov::Tensor& latent) const = 0;
    // A preview of a step callback's latent, RGB u8 [N,H,W,3] at the image size. Full decodes it; Fast renders it with
    // the map fitted by the model's first fast preview from one decode at that latent's shape (a VAE compiled for
    // static shapes takes no other), so only that first one costs a decode.
    ov::Tensor preview(const ov::Tensor& latent, PreviewMode mode) const;
    virtual bool supports(Task task) const = 0;
    // Throws what generate() would throw for these parameters, without running anything: a caller
    // can refuse a bad request before it waits for a slot. Returns the shape the call would run at.
    virtual CallShape validate(Task task, const GenerationParams& params, const ImageInputs& images) const = 0;

    const std::string& class_name() const { return class_name_; }
    double load_ms() const { return load_ms_; }
    const std::vector<AdapterReport>& adapter_report() const { return adapter_report_; }
    // The scheduler names its calls accept: AUTO and those of the kind its folder ships (see scheduler_names_like).
    const std::vector<std::string>& schedulers() const { return schedulers_; }

protected:
    // The family's generation, behind generate()'s checks.
    virtual GenerationResult run(Task task, const GenerationParams& params, const ImageInputs& images,
                                 const GenerationControl& control) const = 0;

    std::string class_name_;
    double load_ms_ = 0;
    std::vector<AdapterReport> adapter_report_;
    std::vector<std::string> schedulers_;

private:
    WeightFiles weight_files_;
    mutable std::mutex preview_mutex_;
    mutable std::shared_ptr<const LatentPreview> preview_map_;
    friend std::shared_ptr<DiffusionModel> load_diffusion_model(const std::string&, const LoadConfig&);
};

}  // namespace ovd
