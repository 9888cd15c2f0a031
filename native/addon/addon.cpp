// Module entry: process-level functions and the classes.
#include <napi.h>

#include "addon_state.hpp"
#include "async_task.hpp"
#include "base/allocator_tuning.hpp"
#include "base/openvino_core.hpp"
#include "convert.hpp"
#include "diffusion_model_wrap.hpp"
#include "ir_model_wrap.hpp"

namespace ovd::addon {
namespace {

Napi::Value openvino_version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ovd::openvino_version()); }

Napi::Value available_devices(const Napi::CallbackInfo& info) {
    return from_strings(info.Env(), guarded(info.Env(), [] { return ovd::available_devices(); }));
}

Napi::Value allocator_tuning(const Napi::CallbackInfo& info) {
    const AllocatorTuning& tuning = tune_allocator_once();
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("applied", tuning.applied);
    out.Set("mmapThreshold", static_cast<double>(tuning.mmap_threshold));
    out.Set("reason", tuning.reason);
    return out;
}

// The engine's generation parameters: [{name, kind}], for the test that keeps lib/parameters.ts in step.
Napi::Value generation_parameters(const Napi::CallbackInfo& info) {
    const auto& fields = generation_param_fields();
    Napi::Array out = Napi::Array::New(info.Env(), fields.size());
    for (size_t i = 0; i < fields.size(); ++i) {
        Napi::Object field = Napi::Object::New(info.Env());
        field.Set("name", fields[i].name);
        field.Set("kind", param_kind_name(fields[i].kind));
        out.Set(i, field);
    }
    return out;
}

// Every scheduler name the engine accepts, AUTO first (lib/parameters.ts mirrors it; a test compares them).
Napi::Value scheduler_names(const Napi::CallbackInfo& info) { return from_strings(info.Env(), scheduler_type_names()); }

Napi::Value source_hash(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), OVD_SOURCE_HASH); }

void load_tokenizers_extension(const Napi::CallbackInfo& info) {
    const std::string path = to_string(info[0], "libraryPath");
    guarded(info.Env(), [&] { ovd::load_tokenizers_extension(path); });
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
    auto* state = new AddonState();
    env.SetInstanceData(state);
    Napi::Function ir_model = IrModelWrap::define(env);
    state->ir_model_constructor = Napi::Persistent(ir_model);
    exports.Set("IrModel", ir_model);
    Napi::Function diffusion_model = DiffusionModelWrap::define(env);
    state->diffusion_model_constructor = Napi::Persistent(diffusion_model);
    exports.Set("DiffusionModel", diffusion_model);
    exports.Set("openvinoVersion", Napi::Function::New(env, openvino_version));
    exports.Set("availableDevices", Napi::Function::New(env, available_devices));
    exports.Set("allocatorTuning", Napi::Function::New(env, allocator_tuning));
    exports.Set("sourceHash", Napi::Function::New(env, source_hash));
    exports.Set("generationParameters", Napi::Function::New(env, generation_parameters));
    exports.Set("schedulerNames", Napi::Function::New(env, scheduler_names));
    exports.Set("loadTokenizersExtension", Napi::Function::New(env, load_tokenizers_extension));
    return exports;
}

}  // namespace ovd::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ovd::addon::init(env, exports); }
NODE_API_MODULE(ov_diffusion, InitModule)
