#include "pipelines/denoising_loop.hpp"

#include <algorithm>

#include "base/errors.hpp"
#include "base/weight_files.hpp"

namespace ovd {

std::unique_ptr<Scheduler> scheduler_for_call(const Json& config, SchedulerType type, const std::string& source) {
    try {
        return create_scheduler(config, type, source);
    } catch (const std::invalid_argument& e) {
        throw invalid_param("scheduler", e.what());
    }
}

bool run_denoising_loop(const DenoisingLoop& loop, const GenerationControl& control, GenerationResult& result) {
    const auto completes = [&](size_t i) { return !loop.completes_step || loop.completes_step(i); };
    size_t total = 0;
    for (size_t i = 0; i < loop.num_steps; ++i) total += completes(i) ? 1 : 0;
    double pending_ms = 0;  // a warm-up call's time, added to the step it prepares
    for (size_t i = 0; i < loop.num_steps; ++i) {
        if (control.cancelled && control.cancelled->load()) {
            result.stopped = true;
            return false;
        }
        if (control.weights) control.weights->check_unchanged();
        const auto step_start = Clock::now();
        loop.step(i);
        pending_ms += ms_since(step_start);
        if (!completes(i)) {
            result.metrics.warmup_calls += 1;
            continue;
        }
        result.metrics.step_ms.push_back(pending_ms);
        pending_ms = 0;
        const size_t step = result.steps++;
        if (control.on_step && control.on_step(step, total, loop.latent_for_callback())) {
            result.stopped = true;
            return false;
        }
    }
    return true;
}

void infer_denoiser(ov::InferRequest& request, GenerationResult& result, const char* what) {
    const auto start = Clock::now();
    try {
        request.infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string(what) + " inference failed: " + e.what());
    }
    result.metrics.denoiser_ms.push_back(ms_since(start));
}

void finish_generation(bool completed, const std::function<ov::Tensor()>& decode, Clock::time_point start, GenerationResult& result) {
    if (completed) {
        const auto t0 = Clock::now();
        result.images = decode();
        result.metrics.vae_decode_ms = ms_since(t0);
    }
    result.metrics.total_ms = ms_since(start);
}

}  // namespace ovd
