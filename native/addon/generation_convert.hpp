#pragma once
// Conversions of the diffusion model API's values between JS and the engine: load options, a call's task,
// parameters and images, and its results. All on the JS thread, before work is queued or after it is done.
#include <optional>
#include <string>

#include <napi.h>

#include "pipelines/pipeline_factory.hpp"

namespace ovd::addon {

// Optional fields of a JS object (undefined/null: nullopt); a wrong type throws ERR_INVALID_ARGUMENT.
std::optional<std::string> optional_string(const Napi::Object& o, const char* key);
std::optional<double> optional_number(const Napi::Object& o, const char* key);
std::optional<int64_t> optional_integer(const Napi::Object& o, const char* key);

// load()'s ({textEncoder, denoiser, vae}, properties, {adapters: [{name, path, alpha?}], mode}, reshape?).
LoadConfig to_load_config(const Napi::Value& devices, const Napi::Value& properties, const Napi::Value& lora, const Napi::Value& reshape,
                          const Napi::Value& deepcache);

// A call as the engine takes it: (task, {prompt, <parameter fields>..., adapters?}, {image?, mask?}).
struct Request {
    Task task;
    GenerationParams params;
    ImageInputs images;
};
Request to_request(const Napi::Value& task, const Napi::Value& params, const Napi::Value& images);

Task to_task(Napi::Env env, const std::string& name);
const char* task_to_js(Task task);

// RGB u8 [N,H,W,3] -> {count, width, height, data: Buffer}
Napi::Object images_to_js(Napi::Env env, const ov::Tensor& images);
Napi::Object metrics_to_js(Napi::Env env, const GenerationMetrics& metrics);
// -> {width, height, numImagesPerPrompt, numInferenceSteps}
Napi::Object call_shape_to_js(Napi::Env env, const CallShape& shape);

}  // namespace ovd::addon
