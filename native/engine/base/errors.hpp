#pragma once
// Engine errors carry a stable code; the addon turns it into the JS error's `code` property.
#include <stdexcept>
#include <string>

namespace ovd {

enum class ErrorCode {
    InvalidArgument,   // a parameter the caller passed is out of range or malformed
    ModelNotFound,     // a model folder or one of its files is missing
    UnsupportedModel,  // the folder exists but holds a model class/config we do not run
    ModelChanged,      // a loaded model's weight file was changed in place on disk (base/weight_files.hpp)
    Runtime,           // OpenVINO failed (compile, infer, device)
    Aborted,           // the caller cancelled
    Disposed,          // the object was released before the call
    Internal,          // a bug: an invariant did not hold
};

inline const char* error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
        case ErrorCode::ModelNotFound: return "ERR_MODEL_NOT_FOUND";
        case ErrorCode::UnsupportedModel: return "ERR_UNSUPPORTED_MODEL";
        case ErrorCode::ModelChanged: return "ERR_MODEL_CHANGED";
        case ErrorCode::Runtime: return "ERR_RUNTIME";
        case ErrorCode::Aborted: return "ERR_ABORTED";
        case ErrorCode::Disposed: return "ERR_DISPOSED";
        case ErrorCode::Internal: return "ERR_INTERNAL";
    }
    return "ERR_INTERNAL";
}

class EngineError : public std::runtime_error {
public:
    EngineError(ErrorCode code, const std::string& message, std::string param = {})
        : std::runtime_error(message), code_(code), param_(std::move(param)) {}
    ErrorCode code() const { return code_; }
    // The generation parameter at fault, as GenerationParams names it ("" when none is): the addon passes it on
    // as the JS error's `param`, so no layer above has to read it out of the message.
    const std::string& param() const { return param_; }

private:
    ErrorCode code_;
    std::string param_;
};

inline EngineError invalid_argument(const std::string& message) { return {ErrorCode::InvalidArgument, message}; }
inline EngineError invalid_param(const std::string& param, const std::string& message) {
    return {ErrorCode::InvalidArgument, message, param};
}

}  // namespace ovd
