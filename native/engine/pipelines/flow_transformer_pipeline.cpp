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

std::vector<ov::Tensor> FlowTransformerPipeline::encode_prompt_rows(const std::function<ov::Tensor(const std::string&)>& encode,
                                                                    const std::string& prompt,
                                                                    const std::optional<std::string>& unconditional, size_t batch,
                                                                    GenerationMetrics& metrics) {
    const auto start = Clock::now();
    const ov::Tensor positive = encode(prompt);
    std::vector<ov::Tensor> rows;
    if (unconditional) rows.assign(batch, encode(*unconditional));
    rows.insert(rows.end(), batch, positive);
    metrics.text_encoder_ms["text_encoder"] = ms_since(start);
    metrics.text_encode_ms = ms_since(start);
    return rows;
}

}  // namespace ovd
