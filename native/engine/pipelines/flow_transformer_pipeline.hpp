#pragma once
// What the flow-matching transformer families (FLUX.1, FLUX.2 klein, Z-Image, Qwen-Image) share around their own
// maths: the scheduler config they check at load, validate() as their resolve() without generating, and LoRA adapters
// on the transformer.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/ir_model.hpp"
#include "base/model_folder.hpp"
#include "lora/adapter_set.hpp"
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
    // The same rows with the prompts encoded in one batch (static shapes compile the encoder for it).
    static std::vector<ov::Tensor> encode_prompt_rows_batched(
        const std::function<std::vector<ov::Tensor>(const std::vector<std::string>&)>& encode, const std::string& prompt,
        const std::optional<std::string>& unconditional, size_t batch, GenerationMetrics& metrics);

    // A compiled transformer and, when LoRA adapters were registered (dynamic mode), the controller of its states.
    struct Transformer {
        std::shared_ptr<IrModel> model;
        std::shared_ptr<LoraController> lora;  // null without adapters (or in fuse mode)
    };
    // Registers the load's adapters with `naming` (call before load_transformer).
    void register_adapters(const LoadConfig& load_config, LoraNaming naming);
    // Compiles transformer/openvino_model.xml after `reshape` (static shapes; may be empty) with the registered
    // adapters attached to it, keys prefixed "transformer" (as the oracle: the transformer only).
    Transformer load_transformer(const std::string& xml, const std::string& device, const PropertyMap& properties,
                                 const IrModel::Rewrite& reshape) const;
    // The call's adapters on the leased request of `transformer` (the time spent goes to the metrics).
    static void apply_adapters(const Transformer& transformer, InferRequestPool::Lease& request,
                               const std::vector<AppliedAdapter>& adapters, GenerationMetrics& metrics);

    Json scheduler_config_;
    std::string scheduler_source_;
    std::unique_ptr<AdapterSet> adapters_;  // set by register_adapters
};

}  // namespace ovd
