#include "convert.hpp"

#include <cstring>

#include "async_task.hpp"
#include "base/errors.hpp"

namespace ovd::addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message, const std::string& param) {
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", Napi::String::New(env, code));
    if (!param.empty()) error.Set("param", Napi::String::New(env, param));
    return error;
}

void throw_invalid(Napi::Env env, const std::string& message) {
    throw make_error(env, error_code_name(ErrorCode::InvalidArgument), message);
}

std::string to_string(const Napi::Value& value, const char* what) {
    if (!value.IsString()) throw_invalid(value.Env(), std::string(what) + " must be a string");
    return value.As<Napi::String>().Utf8Value();
}

PropertyMap to_property_map(const Napi::Value& value, const char* what) {
    PropertyMap map;
    if (value.IsUndefined() || value.IsNull()) return map;
    if (!value.IsObject()) throw_invalid(value.Env(), std::string(what) + " must be an object");
    Napi::Object object = value.As<Napi::Object>();
    Napi::Array keys = object.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string key = keys.Get(i).ToString().Utf8Value();
        Napi::Value v = object.Get(key);
        if (!v.IsString() && !v.IsNumber() && !v.IsBoolean())
            throw_invalid(value.Env(), std::string(what) + "." + key + " must be a string, number or boolean");
        std::string text = v.ToString().Utf8Value();
        if (v.IsBoolean()) text = v.As<Napi::Boolean>().Value() ? "YES" : "NO";  // OpenVINO's spelling
        map[key] = text;
    }
    return map;
}

namespace {
struct TypeName {
    const char* name;
    ov::element::Type type;
    napi_typedarray_type array_type;
};
const TypeName kTypes[] = {
    {"f32", ov::element::f32, napi_float32_array},  {"f16", ov::element::f16, napi_uint16_array},
    {"i64", ov::element::i64, napi_bigint64_array}, {"i32", ov::element::i32, napi_int32_array},
    {"u8", ov::element::u8, napi_uint8_array},
};
}  // namespace

ov::Tensor to_tensor(const Napi::Value& value, const char* what) {
    Napi::Env env = value.Env();
    const std::string prefix(what);
    if (!value.IsObject()) throw_invalid(env, prefix + " must be an object {type, shape, data}");
    Napi::Object object = value.As<Napi::Object>();
    const std::string type = to_string(object.Get("type"), (prefix + ".type").c_str());
    const TypeName* entry = nullptr;
    for (const auto& t : kTypes)
        if (type == t.name) entry = &t;
    if (!entry) throw_invalid(env, prefix + ".type must be one of f32, f16, i64, i32, u8");
    Napi::Value shape_value = object.Get("shape");
    if (!shape_value.IsArray()) throw_invalid(env, prefix + ".shape must be an array of non-negative integers");
    Napi::Array shape_array = shape_value.As<Napi::Array>();
    ov::Shape shape;
    for (uint32_t i = 0; i < shape_array.Length(); ++i) {
        Napi::Value d = shape_array.Get(i);
        const double dim = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
        if (dim < 0 || dim != static_cast<double>(static_cast<size_t>(dim)))
            throw_invalid(env, prefix + ".shape must be an array of non-negative integers");
        shape.push_back(static_cast<size_t>(dim));
    }
    Napi::Value data_value = object.Get("data");
    if (!data_value.IsTypedArray() || data_value.As<Napi::TypedArray>().TypedArrayType() != entry->array_type)
        throw_invalid(env, prefix + ".data must be the typed array that matches type " + type);
    Napi::TypedArray data = data_value.As<Napi::TypedArray>();
    ov::Tensor tensor(entry->type, shape);
    if (data.ByteLength() != tensor.get_byte_size())
        throw_invalid(env, prefix + ".data has " + std::to_string(data.ByteLength()) + " bytes, shape " + shape.to_string() + " needs " +
                               std::to_string(tensor.get_byte_size()));
    std::memcpy(tensor.data(), static_cast<const uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset(), data.ByteLength());
    return tensor;
}

Napi::Object from_tensor(Napi::Env env, const ov::Tensor& tensor) {
    const TypeName* entry = nullptr;
    for (const auto& t : kTypes)
        if (tensor.get_element_type() == t.type) entry = &t;
    if (!entry)
        throw make_error(env, error_code_name(ErrorCode::Internal),
                         "cannot return a tensor of type " + tensor.get_element_type().get_type_name());
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, tensor.get_byte_size());
    std::memcpy(buffer.Data(), tensor.data(), tensor.get_byte_size());
    const size_t count = tensor.get_size();
    Napi::Value data;
    switch (entry->array_type) {
        case napi_float32_array: data = Napi::Float32Array::New(env, count, buffer, 0); break;
        case napi_uint16_array: data = Napi::Uint16Array::New(env, count, buffer, 0); break;
        case napi_bigint64_array: data = Napi::BigInt64Array::New(env, count, buffer, 0); break;
        case napi_int32_array: data = Napi::Int32Array::New(env, count, buffer, 0); break;
        default: data = Napi::Uint8Array::New(env, count, buffer, 0); break;
    }
    Napi::Array shape = Napi::Array::New(env, tensor.get_shape().size());
    for (size_t i = 0; i < tensor.get_shape().size(); ++i) shape.Set(i, Napi::Number::New(env, tensor.get_shape()[i]));
    Napi::Object object = Napi::Object::New(env);
    object.Set("type", entry->name);
    object.Set("shape", shape);
    object.Set("data", data);
    return object;
}

Napi::Array from_strings(Napi::Env env, const std::vector<std::string>& strings) {
    Napi::Array array = Napi::Array::New(env, strings.size());
    for (size_t i = 0; i < strings.size(); ++i) array.Set(i, strings[i]);
    return array;
}

}  // namespace ovd::addon
