#include "diffusion_model_wrap.hpp"

#include "addon_state.hpp"
#include "async_task.hpp"
#include "base/errors.hpp"
#include "convert.hpp"
#include "generation_convert.hpp"

namespace ovd::addon {
namespace {

struct StepEvent {
    size_t step = 0, total = 0;
    ov::Tensor preview;  // RGB u8 [N,H,W,3], empty when no preview was asked for this step
};

void call_on_step(Napi::Env env, Napi::Function callback, std::nullptr_t*, StepEvent* event) {
    std::unique_ptr<StepEvent> owned(event);  // freed even when the environment is shutting down
    if (!env || !callback) return;
    Napi::Value preview = owned->preview ? Napi::Value(images_to_js(env, owned->preview)) : env.Undefined();
    callback.Call({Napi::Number::New(env, owned->step), Napi::Number::New(env, owned->total), preview});
}
using StepFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, StepEvent, call_on_step>;

}  // namespace

Napi::Function DiffusionModelWrap::define(Napi::Env env) {
    return DefineClass(env, "DiffusionModel",
                       {StaticMethod("load", &DiffusionModelWrap::load), InstanceMethod("generate", &DiffusionModelWrap::generate),
                        InstanceMethod("info", &DiffusionModelWrap::info), InstanceMethod("prepare", &DiffusionModelWrap::prepare),
                        InstanceMethod("dispose", &DiffusionModelWrap::dispose)});
}

DiffusionModelWrap::DiffusionModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DiffusionModelWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
        throw_invalid(info.Env(), "DiffusionModel cannot be constructed directly; use DiffusionModel.load()");
    model_ = *info[0].As<Napi::External<std::shared_ptr<DiffusionModel>>>().Data();
}

Napi::Value DiffusionModelWrap::load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string dir = to_string(info[0], "modelDir");
    const LoadConfig load_config = to_load_config(info[1], info[2], info[3], info[4], info[5]);
    return PromiseTask<std::shared_ptr<DiffusionModel>>::queue(
        env, [=] { return load_diffusion_model(dir, load_config); },
        [](Napi::Env env, std::shared_ptr<DiffusionModel>& model) -> Napi::Value {
            std::shared_ptr<DiffusionModel> holder = model;
            auto external = Napi::External<std::shared_ptr<DiffusionModel>>::New(env, &holder);
            return AddonState::of(env).diffusion_model_constructor.New({external});
        });
}

std::shared_ptr<DiffusionModel> DiffusionModelWrap::model_or_throw(Napi::Env env) const {
    if (!model_) throw make_error(env, error_code_name(ErrorCode::Disposed), "the model was disposed");
    return model_;
}

using PreparedRequest = std::shared_ptr<const Request>;

Napi::Value DiffusionModelWrap::prepare(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<DiffusionModel> model = model_or_throw(env);
    auto request = std::make_shared<const Request>(to_request(info[0], info[1], info[2]));
    const CallShape shape = guarded(env, [&] { return model->validate(request->task, request->params, request->images); });
    Napi::Object out = Napi::Object::New(env);
    out.Set("request", Napi::External<PreparedRequest>::New(env, new PreparedRequest(std::move(request)),
                                                            [](Napi::Env, PreparedRequest* prepared) { delete prepared; }));
    out.Set("shape", call_shape_to_js(env, shape));
    return out;
}

Napi::Value DiffusionModelWrap::generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<DiffusionModel> model = model_or_throw(env);
    // The only Externals JS code ever holds are prepare()'s (load() hands its own to the constructor, never to JS).
    if (!info[0].IsExternal()) throw_invalid(env, "generate() takes the request that prepare() returned");
    const PreparedRequest request = *info[0].As<Napi::External<PreparedRequest>>().Data();
    const size_t previews = info[2].IsNumber() ? static_cast<size_t>(std::max(0.0, info[2].As<Napi::Number>().DoubleValue())) : 0;
    const PreviewMode preview_mode =
        info[3].IsString() && info[3].As<Napi::String>().Utf8Value() == "fast" ? PreviewMode::Fast : PreviewMode::Full;

    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<StepFunction> on_step;
    if (info[1].IsFunction()) {
        on_step = std::make_shared<StepFunction>(StepFunction::New(env, info[1].As<Napi::Function>(), "ov-diffusion-step", 0, 1, nullptr));
    }
    Napi::Promise promise = PromiseTask<GenerationResult>::queue(
        env,
        [model, request, on_step, cancelled, previews, preview_mode] {
            // Releases the step function on every exit path so the JS thread can finalize it.
            struct Release {
                std::shared_ptr<StepFunction> fn;
                ~Release() {
                    if (fn) fn->Release();
                }
            } release{on_step};
            GenerationControl control;
            control.cancelled = cancelled.get();
            if (on_step) {
                control.on_step = [&](size_t step, size_t total, const ov::Tensor& denoised) {
                    auto* event = new StepEvent{step, total, {}};
                    if (is_preview_step(step, total, previews)) event->preview = model->preview(denoised, preview_mode);
                    if (on_step->NonBlockingCall(event) != napi_ok) delete event;
                    return false;
                };
            }
            GenerationResult result = model->generate(request->task, request->params, request->images, control);
            if (result.stopped) throw EngineError(ErrorCode::Aborted, "the generation was cancelled");
            return result;
        },
        [](Napi::Env env, GenerationResult& result) -> Napi::Value {
            Napi::Object out = images_to_js(env, result.images);
            out.Set("steps", Napi::Number::New(env, result.steps));
            out.Set("seed", Napi::Number::New(env, static_cast<double>(result.seed)));
            out.Set("scheduler", result.scheduler);
            out.Set("metrics", metrics_to_js(env, result.metrics));
            return out;
        });
    Napi::Object job = Napi::Object::New(env);
    job.Set("promise", promise);
    job.Set("cancel", Napi::Function::New(env, [cancelled](const Napi::CallbackInfo&) { cancelled->store(true); }));
    return job;
}

Napi::Value DiffusionModelWrap::info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto model = model_or_throw(env);
    Napi::Object o = Napi::Object::New(env);
    o.Set("className", model->class_name());
    o.Set("loadMs", model->load_ms());
    Napi::Array tasks = Napi::Array::New(env);
    for (Task t : {Task::Text2Image, Task::Image2Image, Task::Inpainting})
        if (model->supports(t)) tasks.Set(tasks.Length(), Napi::String::New(env, task_to_js(t)));
    o.Set("tasks", tasks);
    o.Set("schedulers", from_strings(env, model->schedulers()));
    Napi::Array adapters = Napi::Array::New(env);
    for (const AdapterReport& r : model->adapter_report()) {
        Napi::Object a = Napi::Object::New(env);
        a.Set("name", r.name);
        a.Set("matchedLayers", Napi::Number::New(env, r.matched));
        a.Set("unmatchedKeys", from_strings(env, r.unmatched));
        adapters.Set(adapters.Length(), a);
    }
    o.Set("adapters", adapters);
    return o;
}

void DiffusionModelWrap::dispose(const Napi::CallbackInfo&) { model_.reset(); }

}  // namespace ovd::addon
