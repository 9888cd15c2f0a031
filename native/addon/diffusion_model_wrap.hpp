#pragma once
// JS class `Pipeline`: a loaded diffusion model folder. generate() runs on a worker thread and
// reports steps (and optional decoded previews) back to the JS thread in order.
#include <memory>

#include <napi.h>

#include "pipelines/pipeline_factory.hpp"

namespace ovd::addon {

class DiffusionModelWrap : public Napi::ObjectWrap<DiffusionModelWrap> {
public:
    static Napi::Function define(Napi::Env env);
    explicit DiffusionModelWrap(const Napi::CallbackInfo& info);

private:
    // (modelDir, {textEncoder, denoiser, vae}, properties, {adapters: [{name, path, alpha}], mode}) -> Promise<Pipeline>
    static Napi::Value load(const Napi::CallbackInfo& info);
    // (task, params, images, onStep?, previews) -> {promise, cancel}
    Napi::Value generate(const Napi::CallbackInfo& info);
    Napi::Value info(const Napi::CallbackInfo& info);
    // (task, params, images) -> throws what generate() would refuse, without queueing anything
    Napi::Value validate(const Napi::CallbackInfo& info);
    void dispose(const Napi::CallbackInfo& info);
    std::shared_ptr<DiffusionModel> pipeline_or_throw(Napi::Env env) const;

    std::shared_ptr<DiffusionModel> pipeline_;
};

}  // namespace ovd::addon
