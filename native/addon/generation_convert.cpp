#include "generation_convert.hpp"

#include <cmath>
#include <cstring>
#include <utility>

#include "async_task.hpp"
#include "base/errors.hpp"
#include "convert.hpp"

namespace ovd::addon {

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

namespace {

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

}  // namespace

// The tasks by their JS names, once for both directions.
constexpr std::pair<Task, const char*> kTaskNames[] = {
    {Task::Text2Image, "text2image"}, {Task::Image2Image, "image2image"}, {Task::Inpainting, "inpainting"}};

Task to_task(Napi::Env env, const std::string& name) {
    for (const auto& [task, js] : kTaskNames)
        if (name == js) return task;
    throw_invalid(env, "task must be text2image, image2image or inpainting");
}

const char* task_to_js(Task task) {
    for (const auto& [t, js] : kTaskNames)
        if (t == task) return js;
    return "unknown";
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
    o.Set("warmupCalls", Napi::Number::New(env, static_cast<double>(m.warmup_calls)));
    Napi::Array denoiser = Napi::Array::New(env, m.denoiser_ms.size());
    for (size_t i = 0; i < m.denoiser_ms.size(); ++i) denoiser.Set(i, m.denoiser_ms[i]);
    o.Set("denoiserMs", denoiser);
    Napi::Object encoders = Napi::Object::New(env);
    for (const auto& [name, ms] : m.text_encoder_ms) encoders.Set(name, ms);
    o.Set("textEncoderMs", encoders);
    return o;
}

Napi::Object images_to_js(Napi::Env env, const ov::Tensor& images) {
    Napi::Object out = Napi::Object::New(env);
    const ov::Shape& shape = images.get_shape();
    out.Set("count", Napi::Number::New(env, shape[0]));
    out.Set("height", Napi::Number::New(env, shape[1]));
    out.Set("width", Napi::Number::New(env, shape[2]));
    out.Set("data", Napi::Buffer<uint8_t>::Copy(env, images.data<const uint8_t>(), images.get_byte_size()));
    return out;
}

LoadConfig to_load_config(const Napi::Value& devices, const Napi::Value& properties, const Napi::Value& lora_value,
                          const Napi::Value& reshape, const Napi::Value& deepcache) {
    Napi::Env env = devices.Env();
    LoadConfig load_config;
    if (devices.IsObject()) {
        Napi::Object d = devices.As<Napi::Object>();
        if (auto v = optional_string(d, "textEncoder")) load_config.text_encoder = *v;
        if (auto v = optional_string(d, "denoiser")) load_config.denoiser = *v;
        if (auto v = optional_string(d, "vae")) load_config.vae = *v;
    }
    load_config.properties = to_property_map(properties, "properties");
    if (lora_value.IsObject()) {
        Napi::Object lora = lora_value.As<Napi::Object>();
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
    if (reshape.IsObject()) {
        Napi::Object r = reshape.As<Napi::Object>();
        const auto width = optional_integer(r, "width"), height = optional_integer(r, "height");
        if (!width || !height) throw_invalid(env, "reshape needs width and height");
        StaticShape shape;
        shape.width = *width;
        shape.height = *height;
        if (auto n = optional_integer(r, "numImagesPerPrompt")) shape.num_images_per_prompt = *n;
        if (auto g = optional_number(r, "guidanceScale")) shape.guidance_scale = static_cast<float>(*g);
        load_config.static_shape = shape;
    } else if (!reshape.IsUndefined() && !reshape.IsNull()) {
        throw_invalid(env, "reshape must be an object {width, height, numImagesPerPrompt?, guidanceScale?}");
    }
    // DeepCache: {branch} (lib/diffusion-model.ts turns `true` into {branch: 0}).
    if (deepcache.IsObject()) {
        const auto branch = optional_integer(deepcache.As<Napi::Object>(), "branch");
        if (branch && *branch < 0) throw_invalid(env, "deepcache branch must be >= 0");
        load_config.deepcache_branch = static_cast<size_t>(branch.value_or(0));
    } else if (!deepcache.IsUndefined() && !deepcache.IsNull()) {
        throw_invalid(env, "deepcache must be an object {branch?}");
    }
    return load_config;
}

Request to_request(const Napi::Value& task, const Napi::Value& params, const Napi::Value& images) {
    Request r{to_task(task.Env(), to_string(task, "task")), to_params(params), {}};
    if (images.IsObject()) {
        r.images.image = to_image(images.As<Napi::Object>().Get("image"), "image");
        r.images.mask = to_image(images.As<Napi::Object>().Get("mask"), "mask");
    }
    return r;
}

Napi::Object call_shape_to_js(Napi::Env env, const CallShape& shape) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("width", Napi::Number::New(env, static_cast<double>(shape.width)));
    o.Set("height", Napi::Number::New(env, static_cast<double>(shape.height)));
    o.Set("numImagesPerPrompt", Napi::Number::New(env, static_cast<double>(shape.batch)));
    o.Set("numInferenceSteps", Napi::Number::New(env, static_cast<double>(shape.steps)));
    return o;
}

}  // namespace ovd::addon
