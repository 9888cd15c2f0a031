#include "pipelines/diffusion_model.hpp"

namespace ovd {

GenerationResult DiffusionModel::generate(Task task, const GenerationParams& params, const ImageInputs& images,
                                          const GenerationControl& control) const {
    const WeightFiles::InUse in_use(weight_files_);
    weight_files_.check_unchanged();
    GenerationControl guarded = control;
    guarded.weights = &weight_files_;
    return run(task, params, images, guarded);
}

ov::Tensor DiffusionModel::preview(const ov::Tensor& latent, PreviewMode mode) const {
    if (mode == PreviewMode::Full) return decode(latent);
    std::shared_ptr<const LatentPreview> map;
    {
        std::lock_guard<std::mutex> lock(preview_mutex_);
        if (!preview_map_ || preview_map_->channels() != latent.get_shape().at(1))
            preview_map_ = std::make_shared<const LatentPreview>(
                LatentPreview::fit([this](const ov::Tensor& z) { return decode(z); }, latent.get_shape()));
        map = preview_map_;
    }
    return map->render(latent);
}

const char* task_name(Task task) {
    switch (task) {
        case Task::Text2Image: return "text-to-image";
        case Task::Image2Image: return "image-to-image";
        case Task::Inpainting: return "inpainting";
    }
    return "unknown";
}

}  // namespace ovd
