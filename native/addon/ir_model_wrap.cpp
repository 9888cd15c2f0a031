#include "ir_model_wrap.hpp"

#include "addon_state.hpp"
#include "async_task.hpp"
#include "convert.hpp"

namespace ovd::addon {

Napi::Function IrModelWrap::define(Napi::Env env) {
    return DefineClass(env, "IrModel",
                       {StaticMethod("load", &IrModelWrap::load), InstanceMethod("infer", &IrModelWrap::infer),
                        InstanceMethod("inputs", &IrModelWrap::inputs), InstanceMethod("outputs", &IrModelWrap::outputs),
                        InstanceMethod("compileMs", &IrModelWrap::compile_ms), InstanceMethod("dispose", &IrModelWrap::dispose)});
}

IrModelWrap::IrModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IrModelWrap>(info) {
    // Instances are only made by load(), which passes the model through an External.
    if (info.Length() != 1 || !info[0].IsExternal())
        throw_invalid(info.Env(), "IrModel cannot be constructed directly; use IrModel.load()");
    model_ = *info[0].As<Napi::External<std::shared_ptr<IrModel>>>().Data();
}

Napi::Value IrModelWrap::load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string path = to_string(info[0], "xmlPath");
    const std::string device = info[1].IsUndefined() ? std::string("CPU") : to_string(info[1], "device");
    const PropertyMap properties = to_property_map(info[2], "properties");
    return PromiseTask<std::shared_ptr<IrModel>>::queue(
        env, [=] { return IrModel::load(path, device, properties); },
        [](Napi::Env env, std::shared_ptr<IrModel>& model) -> Napi::Value {
            std::shared_ptr<IrModel> holder = model;
            auto external = Napi::External<std::shared_ptr<IrModel>>::New(env, &holder);
            // The constructor copies the shared_ptr out of the External before `holder` goes away.
            return AddonState::of(env).ir_model_constructor.New({external});
        });
}

std::shared_ptr<IrModel> IrModelWrap::model_or_throw(Napi::Env env) const {
    if (!model_) throw make_error(env, error_code_name(ErrorCode::Disposed), "the IrModel was disposed");
    return model_;
}

Napi::Value IrModelWrap::infer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<IrModel> model = model_or_throw(env);
    if (!info[0].IsObject()) throw_invalid(env, "inputs must be an object of named tensors");
    Napi::Object object = info[0].As<Napi::Object>();
    Napi::Array names = object.GetPropertyNames();
    std::vector<NamedTensor> inputs;
    for (uint32_t i = 0; i < names.Length(); ++i) {
        const std::string name = names.Get(i).ToString().Utf8Value();
        inputs.push_back({name, to_tensor(object.Get(name), ("inputs." + name).c_str())});
    }
    return PromiseTask<std::vector<NamedTensor>>::queue(
        env, [model, inputs] { return model->infer(inputs); },
        [](Napi::Env env, std::vector<NamedTensor>& outputs) -> Napi::Value {
            Napi::Object result = Napi::Object::New(env);
            for (size_t i = 0; i < outputs.size(); ++i)
                result.Set(outputs[i].name.empty() ? std::to_string(i) : outputs[i].name, from_tensor(env, outputs[i].tensor));
            return result;
        });
}

namespace {
Napi::Array describe_ports(Napi::Env env, const std::vector<PortInfo>& ports) {
    Napi::Array array = Napi::Array::New(env, ports.size());
    for (size_t i = 0; i < ports.size(); ++i) {
        Napi::Object port = Napi::Object::New(env);
        port.Set("name", ports[i].name);
        port.Set("type", ports[i].element_type);
        port.Set("shape", ports[i].shape);
        array.Set(i, port);
    }
    return array;
}
}  // namespace

Napi::Value IrModelWrap::inputs(const Napi::CallbackInfo& info) { return describe_ports(info.Env(), model_or_throw(info.Env())->inputs()); }
Napi::Value IrModelWrap::outputs(const Napi::CallbackInfo& info) {
    return describe_ports(info.Env(), model_or_throw(info.Env())->outputs());
}
Napi::Value IrModelWrap::compile_ms(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), model_or_throw(info.Env())->compile_ms());
}
void IrModelWrap::dispose(const Napi::CallbackInfo&) { model_.reset(); }  // running infers keep their own reference

}  // namespace ovd::addon
