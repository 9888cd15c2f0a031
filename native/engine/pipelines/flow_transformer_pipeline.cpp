#include "pipelines/flow_transformer_pipeline.hpp"

#include "base/errors.hpp"

namespace ovd {

CallShape FlowTransformerPipeline::validate(Task task, const GenerationParams& params, const ImageInputs& images) const {
    size_t max_sequence_length = 0;
    return call_shape(resolve(task, params, images, max_sequence_length));
}

void FlowTransformerPipeline::load_flow_match_scheduler(const ModelFolder& folder, const std::string& family,
                                                        const std::function<void(Json&)>& adjust) {
    scheduler_source_ = folder.file("scheduler/scheduler_config.json").string();
    scheduler_config_ = folder.json("scheduler/scheduler_config.json");
    if (adjust) adjust(scheduler_config_);
    if (create_scheduler(scheduler_config_, SchedulerType::Auto, scheduler_source_)->type() != SchedulerType::FlowMatchEulerDiscrete)
        throw EngineError(ErrorCode::UnsupportedModel, scheduler_source_ + ": " + family + " needs FlowMatchEulerDiscreteScheduler");
}

void FlowTransformerPipeline::register_adapters(const LoadConfig& load_config, LoraNaming naming) {
    adapters_ = std::make_unique<AdapterSet>(load_config.adapters, load_config.lora_mode, naming);
}

FlowTransformerPipeline::Transformer FlowTransformerPipeline::load_transformer(const std::string& xml, const std::string& device,
                                                                               const PropertyMap& properties,
                                                                               const IrModel::Rewrite& reshape) const {
    Transformer transformer;
    IrModel::Rewrite rewrite;
    if (reshape || !adapters_->empty())
        rewrite = [&](const std::shared_ptr<ov::Model>& model) {
            if (reshape) reshape(model);
            if (!adapters_->empty()) transformer.lora = adapters_->prepare(model, "transformer");
        };
    transformer.model = IrModel::load(xml, device, properties, rewrite);
    return transformer;
}

void FlowTransformerPipeline::apply_adapters(const Transformer& transformer, InferRequestPool::Lease& request,
                                             const std::vector<AppliedAdapter>& adapters, GenerationMetrics& metrics) {
    if (transformer.lora) metrics.adapter_apply_ms += transformer.lora->apply(request, adapters);
}

namespace {

// [unconditional x N, positive x N], or [positive x N] without an unconditional embedding; times the encoder.
std::vector<ov::Tensor> prompt_rows(const ov::Tensor& positive, const std::optional<ov::Tensor>& unconditional, size_t batch,
                                    Clock::time_point start, GenerationMetrics& metrics) {
    std::vector<ov::Tensor> rows;
    if (unconditional) rows.assign(batch, *unconditional);
    rows.insert(rows.end(), batch, positive);
    metrics.text_encoder_ms["text_encoder"] = ms_since(start);
    metrics.text_encode_ms = ms_since(start);
    return rows;
}

}  // namespace

std::vector<ov::Tensor> FlowTransformerPipeline::encode_prompt_rows(const std::function<ov::Tensor(const std::string&)>& encode,
                                                                    const std::string& prompt,
                                                                    const std::optional<std::string>& unconditional, size_t batch,
                                                                    GenerationMetrics& metrics) {
    const auto start = Clock::now();
    const ov::Tensor positive = encode(prompt);
    return prompt_rows(positive, unconditional ? std::optional<ov::Tensor>(encode(*unconditional)) : std::nullopt, batch, start, metrics);
}

std::vector<ov::Tensor> FlowTransformerPipeline::encode_prompt_rows_batched(
    const std::function<std::vector<ov::Tensor>(const std::vector<std::string>&)>& encode, const std::string& prompt,
    const std::optional<std::string>& unconditional, size_t batch, GenerationMetrics& metrics) {
    const auto start = Clock::now();
    if (!unconditional) return prompt_rows(encode({prompt}).front(), std::nullopt, batch, start, metrics);
    const std::vector<ov::Tensor> encoded = encode({*unconditional, prompt});
    return prompt_rows(encoded[1], encoded[0], batch, start, metrics);
}

}  // namespace ovd
