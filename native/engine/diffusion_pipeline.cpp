#include "diffusion_pipeline.hpp"


#include "errors.hpp"
#include "flux_pipeline.hpp"
#include "model_folder.hpp"
#include "sd3_pipeline.hpp"
#include "stable_diffusion_pipeline.hpp"

namespace ovd {

const char* task_name(Task task) {
    switch (task) {
        case Task::Text2Image: return "text-to-image";
        case Task::Image2Image: return "image-to-image";
        case Task::Inpainting: return "inpainting";
    }
    return "unknown";
}

std::shared_ptr<DiffusionPipeline> load_pipeline(const std::string& model_dir, const DeviceConfig& devices) {
    const auto start = Clock::now();
    const ModelFolder folder = ModelFolder::open(model_dir);
    const std::string& cls = folder.class_name();
    std::shared_ptr<DiffusionPipeline> pipeline;
    if (cls == "StableDiffusionPipeline" || cls == "LatentConsistencyModelPipeline" || cls == "StableDiffusionInpaintPipeline" ||
        cls == "StableDiffusionXLPipeline" || cls == "StableDiffusionXLInpaintPipeline") {
        pipeline = std::make_shared<StableDiffusionPipeline>(folder, devices);
    } else if (cls == "StableDiffusion3Pipeline" || cls == "StableDiffusion3InpaintPipeline") {
        pipeline = std::make_shared<StableDiffusion3Pipeline>(folder, devices);
    } else if (cls == "FluxPipeline" || cls == "FluxInpaintPipeline" || cls == "FluxFillPipeline") {
        pipeline = std::make_shared<FluxPipeline>(folder, devices);
    } else {
        throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() + "/model_index.json: unsupported pipeline class '" +
                                                           cls + "'");
    }
    pipeline->class_name_ = cls;
    pipeline->load_ms_ = ms_since(start);
    return pipeline;
}

}  // namespace ovd
