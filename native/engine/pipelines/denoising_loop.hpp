#pragma once
// The denoising loop's bookkeeping that every family shares: the call's scheduler, cancellation, step timing, the
// step callback and the final decode. The per-step maths (guidance, mask blending) is in guidance.hpp.
#include <functional>
#include <memory>
#include <stdexcept>

#include "base/errors.hpp"
#include "base/openvino_core.hpp"
#include "pipelines/generation_params.hpp"
#include "pipelines/guidance.hpp"
#include "schedulers/scheduler.hpp"

namespace ovd {

// One denoising run. `step(i)` performs step i; `latent_for_callback()` gives what the step callback
// sees after it (asked for only when there is a callback).
// Some schedulers evaluate one timestep twice (PNDM's warm-up); `completes_step(i)` is false for a call that
// only prepares the next one: it runs and is timed, but is not a step of its own for the callback, the step
// count and the step times (its time goes to the step it prepares). Unset: every call is a step.
struct DenoisingLoop {
    size_t num_steps = 0;  // denoiser calls
    std::function<void(size_t)> step;
    std::function<ov::Tensor()> latent_for_callback;
    std::function<bool(size_t)> completes_step;
};

// The call's scheduler, from the model folder's config; refusing it (the scheduler named does not fit the config)
// is an error of the `scheduler` parameter.
std::unique_ptr<Scheduler> scheduler_for_call(const Json& config, SchedulerType type, const std::string& source);

// Runs `set_timesteps` (the family's set_timesteps + timesteps call) and returns its timesteps; a refusal there
// (no step left after strength) is an error of the `num_inference_steps` parameter.
template <class SetTimesteps>
auto timesteps_for_call(SetTimesteps&& set_timesteps) -> decltype(set_timesteps()) {
    try {
        return set_timesteps();
    } catch (const std::invalid_argument& e) {
        throw invalid_param("num_inference_steps", e.what());
    }
}

// Runs the calls, checking for cancellation before each and calling the step callback after each step;
// records step times, the step count and the warm-up calls in `result`. Returns false when the run was stopped
// (result.stopped is then set).
bool run_denoising_loop(const DenoisingLoop& loop, const GenerationControl& control, GenerationResult& result);

// After the loop: unless it was stopped, decodes `latent` into result.images (timed); records the total.
void finish_generation(bool completed, const std::function<ov::Tensor()>& decode, Clock::time_point start, GenerationResult& result);

// Runs the denoiser (UNet or transformer), recording its time in result.metrics.denoiser_ms and
// turning OpenVINO's failure into an ERR_RUNTIME naming `what`.
void infer_denoiser(ov::InferRequest& request, GenerationResult& result, const char* what);

}  // namespace ovd
