#pragma once
// JS class `DiffusionModel`: a loaded diffusion model folder. generate() runs on a worker thread and
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
    // (modelDir, {textEncoder, denoiser, vae}, properties, {adapters: [{name, path, alpha}], mode}, reshape?)
    //   -> Promise<DiffusionModel>
    static Napi::Value load(const Napi::CallbackInfo& info);
    // (task, params, images) -> {request, shape}: the request converted once and checked by the engine (throws what
    // generate() would refuse, so a bad request is refused before it waits for a slot), opaque to JS, and the size,
    // image count and steps it resolves to (for admission checks).
    Napi::Value prepare(const Napi::CallbackInfo& info);
    // (prepared request, onStep?, previews, previewMode 'fast' | 'full') -> {promise, cancel}
    Napi::Value generate(const Napi::CallbackInfo& info);
    Napi::Value info(const Napi::CallbackInfo& info);
    void dispose(const Napi::CallbackInfo& info);
    std::shared_ptr<DiffusionModel> model_or_throw(Napi::Env env) const;

    std::shared_ptr<DiffusionModel> model_;
};

}  // namespace ovd::addon
