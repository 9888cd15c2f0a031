#pragma once
// Conversions between JS values and plain engine types. Everything a worker needs is copied out of
// JS objects here, on the JS thread, before the work is queued.
#include <string>
#include <vector>

#include <napi.h>
#include <openvino/openvino.hpp>

#include "base/ir_model.hpp"
#include "base/openvino_core.hpp"

namespace ovd::addon {

// Throws a JS TypeError-like error with code ERR_INVALID_ARGUMENT.
[[noreturn]] void throw_invalid(Napi::Env env, const std::string& message);

std::string to_string(const Napi::Value& value, const char* what);
PropertyMap to_property_map(const Napi::Value& value, const char* what);

// {type: 'f32'|'f16'|'i64'|'i32'|'u8', shape: number[], data: TypedArray} <-> ov::Tensor
ov::Tensor to_tensor(const Napi::Value& value, const char* what);
Napi::Object from_tensor(Napi::Env env, const ov::Tensor& tensor);

Napi::Array from_strings(Napi::Env env, const std::vector<std::string>& strings);

}  // namespace ovd::addon
