#pragma once
// Which family serves a model folder: the one place that knows every concrete pipeline.
#include <memory>
#include <string>

#include "pipelines/diffusion_model.hpp"

namespace ovd {

// Reads model_index.json and builds the pipeline its _class_name names.
std::shared_ptr<DiffusionModel> load_diffusion_model(const std::string& model_dir, const LoadConfig& load_config);

}  // namespace ovd
