#include "diffusion_model_wrap.hpp"

#include <cmath>
#include <cstring>

#include "addon_state.hpp"
#include "async_task.hpp"
#include "base/errors.hpp"
#include "convert.hpp"

namespace ovd::addon {
namespace {

struct StepEvent {
    size_t step = 0, total = 0;
    ov::Tensor preview;  // RGB u8 [N,H,W,3], empty when no preview was asked for this step
};

Napi::Object images_to_js(Napi::Env env, const ov::Tensor& images) {
    Napi::Object out = Napi::Object::New(env);
    const ov::Shape& shape = images.get_shape();
    out.Set("count", Napi::Number::New(env, shape[0]));
    out.Set("height", Napi::Number::New(env, shape[1]));
    out.Set("width", Napi::Number::New(env, shape[2]));
    out.Set("data", Napi::Buffer<uint8_t>::Copy(env, images.data<const uint8_t>(), images.get_byte_size()));
    return out;
}

void call_on_step(Napi::Env env, Napi::Function callback, std::nullptr_t*, StepEvent* event) {
    std::unique_ptr<StepEvent> owned(event);  // freed even when the environment is shutting down
    if (!env || !callback) return;
    Napi::Value preview = owned->preview ? Napi::Value(images_to_js(env, owned->preview)) : env.Undefined();
    callback.Call({Napi::Number::New(env, owned->step), Napi::Number::New(env, owned->total), preview});
}
using StepFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, StepEvent, call_on_step>;

std::optional<std::string> optional_string(const Napi::Object& o, const char* key) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return std::nullopt;
    return to_string(v, key);
}

std::optional<double> optional_number(const Napi::Object& o, const char* key) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return std::nullopt;
    if (!v.IsNumber()) throw_invalid(o.Env(), std::string(key) + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
}

std::optional<int64_t> optional_integer(const Napi::Object& o, const char* key) {
    auto v = optional_number(o, key);
    if (!v) return std::nullopt;
    if (*v != std::floor(*v) || std::abs(*v) > 9007199254740991.0) throw_invalid(o.Env(), std::string(key) + " must be an integer");
    return static_cast<int64_t>(*v);
}

[[noreturn]] void throw_param(Napi::Env env, const std::string& param, const std::string& message) {
    throw make_error(env, error_code_name(ErrorCode::InvalidArgument), message, param);
}

// One parameter's JS value, converted by the kind the engine's table gives it.
ParamValue to_param_value(const Napi::Value& v, const ParamField& field) {
    Napi::Env env = v.Env();
    const std::string name = field.name;
    ParamValue out;
    switch (field.kind) {
        case ParamKind::String:
        case ParamKind::Scheduler:
            if (!v.IsString()) throw_param(env, name, name + " must be a string");
            out.text = v.As<Napi::String>().Utf8Value();
            break;
        case ParamKind::Number:
        case ParamKind::Integer: {
            if (!v.IsNumber()) throw_param(env, name, name + " must be a number");
            out.number = v.As<Napi::Number>().DoubleValue();
            if (field.kind == ParamKind::Integer) {
                if (out.number != std::floor(out.number) || std::abs(out.number) > 9007199254740991.0)
                    throw_param(env, name, name + " must be an integer");
                out.integer = static_cast<int64_t>(out.number);
            }
            break;
        }
        case ParamKind::TaylorSeer: {
            // true (the oracle's defaults), false (off), or {cacheInterval, disableCacheBeforeStep, disableCacheAfterStep}.
            if (v.IsBoolean()) {
                if (v.As<Napi::Boolean>().Value()) out.taylorseer = TaylorSeerConfig{};
                break;
            }
            if (!v.IsObject())
                throw_param(env, name, "taylorseer must be true, false or {cacheInterval, disableCacheBeforeStep, disableCacheAfterStep}");
            Napi::Object c = v.As<Napi::Object>();
            Napi::Array keys = c.GetPropertyNames();
            for (uint32_t i = 0; i < keys.Length(); ++i) {
                const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
                if (key != "cacheInterval" && key != "disableCacheBeforeStep" && key != "disableCacheAfterStep")
                    throw_param(env, name,
                                "unknown taylorseer field '" + key + "' (cacheInterval, disableCacheBeforeStep, disableCacheAfterStep)");
            }
            TaylorSeerConfig config;
            if (auto x = optional_integer(c, "cacheInterval")) config.cache_interval = *x;
            if (auto x = optional_integer(c, "disableCacheBeforeStep")) config.disable_cache_before_step = *x;
            if (auto x = optional_integer(c, "disableCacheAfterStep")) config.disable_cache_after_step = *x;
            out.taylorseer = config;
            break;
        }
    }
    return out;
}

// {prompt, <the engine's parameter fields>..., adapters?: [{name, alpha?}]} -> GenerationParams.
GenerationParams to_params(const Napi::Value& value) {
    Napi::Env env = value.Env();
    if (!value.IsObject()) throw_invalid(env, "params must be an object");
    Napi::Object o = value.As<Napi::Object>();
    GenerationParams p;
    p.prompt = to_string(o.Get("prompt"), "prompt");
    for (const ParamField& field : generation_param_fields()) {
        Napi::Value v = o.Get(field.name);
        if (v.IsUndefined() || v.IsNull()) continue;
        const ParamValue converted = to_param_value(v, field);
        guarded(env, [&] { field.set(p, converted); });
    }
    Napi::Value adapters = o.Get("adapters");
    if (!adapters.IsUndefined() && !adapters.IsNull()) {
        if (!adapters.IsArray()) throw_invalid(env, "adapters must be an array of {name, alpha?}");
        Napi::Array list = adapters.As<Napi::Array>();
        for (uint32_t i = 0; i < list.Length(); ++i) {
            if (!list.Get(i).IsObject()) throw_invalid(env, "adapters must be an array of {name, alpha?}");
            Napi::Object entry = list.Get(i).As<Napi::Object>();
            AdapterChoice request{to_string(entry.Get("name"), "adapters[].name"), std::nullopt};
            if (auto alpha = optional_number(entry, "alpha")) request.alpha = static_cast<float>(*alpha);
            p.adapters.push_back(std::move(request));
        }
    }
    return p;
}

// {data: Uint8Array, width, height, channels} -> u8 [1,H,W,C]
ov::Tensor to_image(const Napi::Value& value, const char* what) {
    Napi::Env env = value.Env();
    if (value.IsUndefined() || value.IsNull()) return {};
    if (!value.IsObject()) throw_invalid(env, std::string(what) + " must be a raw image {data, width, height, channels}");
    Napi::Object o = value.As<Napi::Object>();
    const auto width = optional_integer(o, "width"), height = optional_integer(o, "height"), channels = optional_integer(o, "channels");
    if (!width || !height || !channels || *width <= 0 || *height <= 0 || (*channels != 1 && *channels != 3))
        throw_invalid(env, std::string(what) + " needs positive width and height and 1 or 3 channels");
    Napi::Value data = o.Get("data");
    if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw_invalid(env, std::string(what) + ".data must be a Uint8Array or Buffer");
    Napi::Uint8Array bytes = data.As<Napi::Uint8Array>();
    ov::Tensor tensor(ov::element::u8, ov::Shape{1, size_t(*height), size_t(*width), size_t(*channels)});
    if (bytes.ByteLength() != tensor.get_byte_size())
        throw_invalid(env, std::string(what) + ".data has " + std::to_string(bytes.ByteLength()) + " bytes, expected " +
                               std::to_string(tensor.get_byte_size()));
    std::memcpy(tensor.data(), bytes.Data(), bytes.ByteLength());
    return tensor;
}

Task to_task(Napi::Env env, const std::string& name) {
    if (name == "text2image") return Task::Text2Image;
    if (name == "image2image") return Task::Image2Image;
    if (name == "inpainting") return Task::Inpainting;
    throw_invalid(env, "task must be text2image, image2image or inpainting");
}

Napi::Object metrics_to_js(Napi::Env env, const GenerationMetrics& m) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("textEncodeMs", m.text_encode_ms);
    o.Set("vaeEncodeMs", m.vae_encode_ms);
    o.Set("vaeDecodeMs", m.vae_decode_ms);
    o.Set("totalMs", m.total_ms);
    o.Set("adapterApplyMs", m.adapter_apply_ms);
    Napi::Array steps = Napi::Array::New(env, m.step_ms.size());
    for (size_t i = 0; i < m.step_ms.size(); ++i) steps.Set(i, m.step_ms[i]);
    o.Set("stepMs", steps);
    Napi::Array denoiser = Napi::Array::New(env, m.denoiser_ms.size());
    for (size_t i = 0; i < m.denoiser_ms.size(); ++i) denoiser.Set(i, m.denoiser_ms[i]);
    o.Set("denoiserMs", denoiser);
    Napi::Object encoders = Napi::Object::New(env);
    for (const auto& [name, ms] : m.text_encoder_ms) encoders.Set(name, ms);
    o.Set("textEncoderMs", encoders);
    return o;
}

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
    LoadConfig load_config;
    if (info[1].IsObject()) {
        Napi::Object d = info[1].As<Napi::Object>();
        if (auto v = optional_string(d, "textEncoder")) load_config.text_encoder = *v;
        if (auto v = optional_string(d, "denoiser")) load_config.denoiser = *v;
        if (auto v = optional_string(d, "vae")) load_config.vae = *v;
    }
    load_config.properties = to_property_map(info[2], "properties");
    if (info[3].IsObject()) {
        Napi::Object lora = info[3].As<Napi::Object>();
        if (auto mode = optional_string(lora, "mode")) {
            if (*mode == "fuse")
                load_config.lora_mode = LoraMode::Fuse;
            else if (*mode != "dynamic")
                throw_invalid(env, "adapter mode must be 'dynamic' or 'fuse'");
        }
        Napi::Value list = lora.Get("adapters");
        if (list.IsArray()) {
            Napi::Array adapters = list.As<Napi::Array>();
            for (uint32_t i = 0; i < adapters.Length(); ++i) {
                if (!adapters.Get(i).IsObject()) throw_invalid(env, "adapters must be objects {name, path, alpha?}");
                Napi::Object a = adapters.Get(i).As<Napi::Object>();
                AdapterSpec spec{to_string(a.Get("name"), "adapter name"), to_string(a.Get("path"), "adapter path"), 1.0f};
                if (auto alpha = optional_number(a, "alpha")) spec.alpha = static_cast<float>(*alpha);
                load_config.adapters.push_back(std::move(spec));
            }
        }
    }
    // Static shapes: {width, height, numImagesPerPrompt?, guidanceScale?}.
    if (info[4].IsObject()) {
        Napi::Object r = info[4].As<Napi::Object>();
        const auto width = optional_integer(r, "width"), height = optional_integer(r, "height");
        if (!width || !height) throw_invalid(env, "reshape needs width and height");
        StaticShape shape;
        shape.width = *width;
        shape.height = *height;
        if (auto n = optional_integer(r, "numImagesPerPrompt")) shape.num_images_per_prompt = *n;
        if (auto g = optional_number(r, "guidanceScale")) shape.guidance_scale = static_cast<float>(*g);
        load_config.static_shape = shape;
    } else if (!info[4].IsUndefined() && !info[4].IsNull()) {
        throw_invalid(env, "reshape must be an object {width, height, numImagesPerPrompt?, guidanceScale?}");
    }
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

namespace {
// (task, params, {image, mask}) as the engine takes them.
struct Request {
    Task task;
    GenerationParams params;
    ImageInputs images;
};

Request to_request(const Napi::CallbackInfo& info) {
    Request r{to_task(info.Env(), to_string(info[0], "task")), to_params(info[1]), {}};
    if (info[2].IsObject()) {
        r.images.image = to_image(info[2].As<Napi::Object>().Get("image"), "image");
        r.images.mask = to_image(info[2].As<Napi::Object>().Get("mask"), "mask");
    }
    return r;
}
}  // namespace

using PreparedRequest = std::shared_ptr<const Request>;

Napi::Value DiffusionModelWrap::prepare(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<DiffusionModel> model = model_or_throw(env);
    auto request = std::make_shared<const Request>(to_request(info));
    const CallShape shape = guarded(env, [&] { return model->validate(request->task, request->params, request->images); });
    Napi::Object resolved = Napi::Object::New(env);
    resolved.Set("width", Napi::Number::New(env, static_cast<double>(shape.width)));
    resolved.Set("height", Napi::Number::New(env, static_cast<double>(shape.height)));
    resolved.Set("numImagesPerPrompt", Napi::Number::New(env, static_cast<double>(shape.batch)));
    resolved.Set("numInferenceSteps", Napi::Number::New(env, static_cast<double>(shape.steps)));
    Napi::Object out = Napi::Object::New(env);
    out.Set("request", Napi::External<PreparedRequest>::New(env, new PreparedRequest(std::move(request)),
                                                            [](Napi::Env, PreparedRequest* prepared) { delete prepared; }));
    out.Set("shape", resolved);
    return out;
}

Napi::Value DiffusionModelWrap::generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<DiffusionModel> model = model_or_throw(env);
    // The only Externals JS code ever holds are prepare()'s (load() hands its own to the constructor, never to JS).
    if (!info[0].IsExternal()) throw_invalid(env, "generate() takes the request that prepare() returned");
    const PreparedRequest request = *info[0].As<Napi::External<PreparedRequest>>().Data();
    const size_t previews = info[2].IsNumber() ? static_cast<size_t>(std::max(0.0, info[2].As<Napi::Number>().DoubleValue())) : 0;

    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<StepFunction> on_step;
    if (info[1].IsFunction()) {
        on_step = std::make_shared<StepFunction>(StepFunction::New(env, info[1].As<Napi::Function>(), "ov-diffusion-step", 0, 1, nullptr));
    }
    Napi::Promise promise = PromiseTask<GenerationResult>::queue(
        env,
        [model, request, on_step, cancelled, previews] {
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
                    if (is_preview_step(step, total, previews)) event->preview = model->decode(denoised);
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
        if (model->supports(t))
            tasks.Set(tasks.Length(), Napi::String::New(env, t == Task::Text2Image    ? "text2image"
                                                             : t == Task::Image2Image ? "image2image"
                                                                                      : "inpainting"));
    o.Set("tasks", tasks);
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
