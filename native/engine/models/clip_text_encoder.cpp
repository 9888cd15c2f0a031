#include "models/clip_text_encoder.hpp"

#include <cstring>

#include "base/errors.hpp"
#include "base/tensor_ops.hpp"

namespace ovd {

std::shared_ptr<ClipTextEncoder> ClipTextEncoder::load(const ModelFolder& folder, const std::string& component, const std::string& device,
                                                       const PropertyMap& properties, AdapterSet* adapters, const std::string& lora_prefix,
                                                       size_t static_batch) {
    auto encoder = std::make_shared<ClipTextEncoder>();
    const Json config = folder.json(component + "/config.json");
    encoder->context_length_ = config.get_or<size_t>("max_position_embeddings", 77);
    encoder->num_hidden_layers_ = config.get_or<size_t>("num_hidden_layers", 12);
    std::string tokenizer_component = component;
    tokenizer_component.replace(0, std::string("text_encoder").size(), "tokenizer");
    encoder->tokenizer_ = Tokenizer::load(folder.file(tokenizer_component + "/openvino_tokenizer.xml").parent_path());
    const std::string xml = folder.file(component + "/openvino_model.xml").string();
    IrModel::Rewrite rewrite;
    if (static_batch || adapters)
        rewrite = [&](const std::shared_ptr<ov::Model>& model) {
            if (static_batch) {
                // Input 0 (the ids) becomes [static_batch, context length].
                const std::string ids = model->input(0).get_names().empty() ? std::string() : model->input(0).get_any_name();
                reshape_inputs(
                    model,
                    [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                        if (name != ids || shape.rank() != 2) return std::nullopt;
                        shape[0] = static_cast<int64_t>(static_batch);
                        shape[1] = static_cast<int64_t>(encoder->context_length_);
                        return shape;
                    },
                    xml);
            }
            if (adapters) encoder->lora_ = adapters->prepare(model, lora_prefix);
        };
    encoder->model_ = IrModel::load(xml, device, properties, rewrite);
    return encoder;
}

std::vector<ov::Tensor> ClipTextEncoder::encode(const std::string& positive, const std::string& negative, bool with_negative,
                                                const std::vector<AppliedAdapter>* adapters, double* adapter_apply_ms) const {
    auto request = model_->borrow();
    if (lora_) {
        const double ms = lora_->apply(request, adapters ? *adapters : std::vector<AppliedAdapter>{});
        if (adapter_apply_ms) *adapter_apply_ms += ms;
    }
    const auto port = model_->compiled().input(0);
    // A static batch-2 model always reads [negative, positive]; only the positive row is returned then.
    const ov::PartialShape& compiled_shape = port.get_partial_shape();
    const bool static_pair = compiled_shape.is_static() && compiled_shape[0].get_length() == 2;
    const size_t batch = with_negative || static_pair ? 2 : 1;
    if (compiled_shape.is_static() && static_cast<size_t>(compiled_shape[0].get_length()) != batch)
        throw EngineError(ErrorCode::Runtime, "the text encoder was reshaped for batch " + std::to_string(compiled_shape[0].get_length()) +
                                                  ", this call needs " + std::to_string(batch));
    ov::Tensor ids(port.get_element_type(), ov::Shape{batch, context_length_});
    auto fill_row = [&](size_t row, const std::string& text) {
        std::vector<int64_t> tokens = tokenizer_->encode(text);
        tokens.resize(context_length_, tokenizer_->pad_token_id());  // cut or pad to the context
        if (ids.get_element_type() == ov::element::i64) {
            std::copy(tokens.begin(), tokens.end(), ids.data<int64_t>() + row * context_length_);
        } else if (ids.get_element_type() == ov::element::i32) {
            std::transform(tokens.begin(), tokens.end(), ids.data<int32_t>() + row * context_length_,
                           [](int64_t v) { return static_cast<int32_t>(v); });
        } else {
            throw EngineError(ErrorCode::UnsupportedModel, "text encoder input ids must be i32 or i64");
        }
    };
    if (batch == 2) {
        fill_row(0, negative);
        fill_row(1, positive);
    } else {
        fill_row(0, positive);
    }
    request.write_input(port, ids);
    request->infer();
    std::vector<ov::Tensor> outputs;
    for (const auto& output : model_->compiled().outputs()) {
        const ov::Tensor& tensor = request->get_tensor(output);
        outputs.push_back(batch == 2 && !with_negative ? slice_rows(tensor, 1, 2) : copy_tensor(tensor));
    }
    return outputs;
}

}  // namespace ovd
