#include "pipelines/pipeline_factory.hpp"

#include "base/errors.hpp"
#include "base/model_folder.hpp"
#include "pipelines/flux2_klein_pipeline.hpp"
#include "pipelines/flux_pipeline.hpp"
#include "pipelines/qwen_image_pipeline.hpp"
#include "pipelines/sd3_pipeline.hpp"
#include "pipelines/stable_diffusion_pipeline.hpp"
#include "pipelines/zimage_pipeline.hpp"
#include "schedulers/scheduler.hpp"

namespace ovd {

std::shared_ptr<DiffusionModel> load_diffusion_model(const std::string& model_dir, const LoadConfig& load_config) {
    const auto start = Clock::now();
    const ModelFolder folder = ModelFolder::open(model_dir);
    // Before anything is read: a file changed during the load is then caught by the first call too.
    WeightFiles weight_files = WeightFiles::snapshot(folder.root());
    const std::string& cls = folder.class_name();
    std::shared_ptr<DiffusionModel> pipeline;
    const bool unet_family = cls == "StableDiffusionPipeline" || cls == "LatentConsistencyModelPipeline" ||
                             cls == "StableDiffusionInpaintPipeline" || cls == "StableDiffusionXLPipeline" ||
                             cls == "StableDiffusionXLInpaintPipeline";
    if (load_config.deepcache_branch && !unet_family)
        throw invalid_param("deepcache", "DeepCache applies to UNet models (SD 1.x/2.x, SDXL, LCM), not to " + cls);
    if (unet_family) {
        pipeline = std::make_shared<StableDiffusionPipeline>(folder, load_config);
    } else if (cls == "StableDiffusion3Pipeline" || cls == "StableDiffusion3InpaintPipeline") {
        pipeline = std::make_shared<StableDiffusion3Pipeline>(folder, load_config);
    } else if (cls == "FluxPipeline" || cls == "FluxInpaintPipeline" || cls == "FluxFillPipeline") {
        pipeline = std::make_shared<FluxPipeline>(folder, load_config);
    } else if (cls == "Flux2KleinPipeline") {
        pipeline = std::make_shared<Flux2KleinPipeline>(folder, load_config);
    } else if (cls == "ZImagePipeline") {
        pipeline = std::make_shared<ZImagePipeline>(folder, load_config);
    } else if (cls == "QwenImagePipeline") {
        pipeline = std::make_shared<QwenImagePipeline>(folder, load_config);
    } else {
        throw EngineError(ErrorCode::UnsupportedModel,
                          folder.root().string() + "/model_index.json: unsupported pipeline class '" + cls + "'");
    }
    pipeline->class_name_ = cls;
    pipeline->weight_files_ = std::move(weight_files);
    // The pipeline has checked its scheduler config; its class says which kind of scheduler the model runs.
    pipeline->schedulers_ =
        scheduler_names_for_class(folder.json("scheduler/scheduler_config.json").get_or<std::string>("_class_name", ""));
    pipeline->load_ms_ = ms_since(start);
    return pipeline;
}

}  // namespace ovd
