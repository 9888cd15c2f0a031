#pragma once
// Per-environment data (worker threads each get their own addon instance).
#include <napi.h>

namespace ovd::addon {

struct AddonState {
    Napi::FunctionReference ir_model_constructor;
    Napi::FunctionReference diffusion_model_constructor;

    static AddonState& of(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }
};

}  // namespace ovd::addon
