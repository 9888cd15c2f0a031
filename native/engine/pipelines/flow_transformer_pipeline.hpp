#pragma once
// What the flow-matching transformer families (FLUX.1, FLUX.2 klein, Z-Image, Qwen-Image) share around their own
// maths: the scheduler config they check at load, and validate() as their resolve() without generating.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/model_folder.hpp"
#include "pipelines/diffusion_model.hpp"
#include "pipelines/resolved_params.hpp"
#include "schedulers/scheduler.hpp"

namespace ovd {

class FlowTransformerPipeline : public DiffusionModel {
public:
    CallShape validate(Task task, const GenerationParams& params, const ImageInputs& images) const final;

protected:
    // The call's parameters with the family's defaults, after its checks, and the text length it encodes at.
    virtual ResolvedParams resolve(Task task, const GenerationParams& params, const ImageInputs& images,
                                   size_t& max_sequence_length) const = 0;
    // Reads scheduler/scheduler_config.json (changed by `adjust`, when given, before the check) and refuses a
    // scheduler other than FlowMatchEulerDiscrete: "<family> needs FlowMatchEulerDiscreteScheduler".
    void load_flow_match_scheduler(const ModelFolder& folder, const std::string& family,
                                   const std::function<void(Json&)>& adjust = nullptr);

    // The batch's prompt embeddings, one per transformer row, in the layout apply_guidance reads: [unconditional x N,
    // prompt x N] when `unconditional` is set (classifier-free guidance), else [prompt x N]. Times the one text encoder.
    static std::vector<ov::Tensor> encode_prompt_rows(const std::function<ov::Tensor(const std::string&)>& encode,
                                                      const std::string& prompt, const std::optional<std::string>& unconditional,
                                                      size_t batch, GenerationMetrics& metrics);

    Json scheduler_config_;
    std::string scheduler_source_;
};

}  // namespace ovd
