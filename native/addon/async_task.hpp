#pragma once
// Runs engine work on a libuv worker thread and settles a Promise on the JS thread.
// The work function must not touch N-API; the convert function runs back on the JS thread.
#include <functional>
#include <optional>
#include <string>

#include <napi.h>

#include "base/errors.hpp"

namespace ovd::addon {

// A JS Error with the engine's stable `code`, and the generation parameter at fault as `param` when there is one.
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message, const std::string& param = {});

// Engine exceptions thrown synchronously on the JS thread keep their code and param as well.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const EngineError& e) {
        throw make_error(env, error_code_name(e.code()), e.what(), e.param());
    }
}

template <typename Result>
class PromiseTask : public Napi::AsyncWorker {
public:
    using Work = std::function<Result()>;
    using Convert = std::function<Napi::Value(Napi::Env, Result&)>;

    static Napi::Promise queue(Napi::Env env, Work work, Convert convert) {
        auto* task = new PromiseTask(env, std::move(work), std::move(convert));
        Napi::Promise promise = task->deferred_.Promise();
        task->Queue();  // the worker deletes itself after OnOK/OnError
        return promise;
    }

protected:
    void Execute() override {
        try {
            result_.emplace(work_());
        } catch (const EngineError& e) {
            code_ = error_code_name(e.code());
            param_ = e.param();
            SetError(e.what());
        } catch (const std::exception& e) {
            code_ = error_code_name(ErrorCode::Runtime);
            SetError(e.what());
        }
    }

    void OnOK() override {
        Napi::Env env = Env();
        try {
            deferred_.Resolve(convert_(env, *result_));
        } catch (const Napi::Error& e) {
            deferred_.Reject(e.Value());
        } catch (const std::exception& e) {
            deferred_.Reject(make_error(env, error_code_name(ErrorCode::Internal), e.what()).Value());
        }
    }

    void OnError(const Napi::Error& error) override { deferred_.Reject(make_error(Env(), code_, error.Message(), param_).Value()); }

private:
    PromiseTask(Napi::Env env, Work work, Convert convert)
        : Napi::AsyncWorker(env, "ov-diffusion"),
          deferred_(Napi::Promise::Deferred::New(env)),
          work_(std::move(work)),
          convert_(std::move(convert)) {}

    Napi::Promise::Deferred deferred_;
    Work work_;
    Convert convert_;
    std::optional<Result> result_;
    std::string code_;
    std::string param_;
};

}  // namespace ovd::addon
