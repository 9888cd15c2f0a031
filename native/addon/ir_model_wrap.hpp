#pragma once
// JS class `IrModel`: one compiled OpenVINO IR, inferred on worker threads.
#include <memory>

#include <napi.h>

#include "base/ir_model.hpp"

namespace ovd::addon {

class IrModelWrap : public Napi::ObjectWrap<IrModelWrap> {
public:
    static Napi::Function define(Napi::Env env);
    explicit IrModelWrap(const Napi::CallbackInfo& info);

private:
    static Napi::Value load(const Napi::CallbackInfo& info);  // (xmlPath, device, properties) -> Promise<IrModel>
    Napi::Value infer(const Napi::CallbackInfo& info);        // ({name: tensor}) -> Promise<{name: tensor}>
    Napi::Value inputs(const Napi::CallbackInfo& info);
    Napi::Value outputs(const Napi::CallbackInfo& info);
    Napi::Value compile_ms(const Napi::CallbackInfo& info);
    void dispose(const Napi::CallbackInfo& info);
    std::shared_ptr<IrModel> model_or_throw(Napi::Env env) const;

    std::shared_ptr<IrModel> model_;
};

}  // namespace ovd::addon
