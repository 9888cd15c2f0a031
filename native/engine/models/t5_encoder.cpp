#include "models/t5_encoder.hpp"

#include <algorithm>

#include "base/errors.hpp"
#include "base/tensor_ops.hpp"

namespace ovd {

std::shared_ptr<T5Encoder> T5Encoder::load(const ModelFolder& folder, const std::string& component, const std::string& device,
                                           const PropertyMap& properties, size_t static_batch, size_t static_length) {
    auto encoder = std::make_shared<T5Encoder>();
    std::string tokenizer_component = component;
    tokenizer_component.replace(0, std::string("text_encoder").size(), "tokenizer");
    encoder->tokenizer_ = Tokenizer::load(folder.file(tokenizer_component + "/openvino_tokenizer.xml").parent_path());
    const std::string xml = folder.file(component + "/openvino_model.xml").string();
    IrModel::Rewrite rewrite;
    if (static_batch)
        rewrite = [&](const std::shared_ptr<ov::Model>& model) {
            // Input 0 (the ids) becomes [static_batch, static_length].
            const std::string ids = model->input(0).get_names().empty() ? std::string() : model->input(0).get_any_name();
            reshape_inputs(
                model,
                [&](const std::string& name, ov::PartialShape shape) -> std::optional<ov::PartialShape> {
                    if (name != ids || shape.rank() != 2) return std::nullopt;
                    shape[0] = static_cast<int64_t>(static_batch);
                    shape[1] = static_cast<int64_t>(static_length);
                    return shape;
                },
                xml);
        };
    encoder->model_ = IrModel::load(xml, device, properties, rewrite);
    return encoder;
}

ov::Tensor T5Encoder::encode(const std::string& positive, const std::string& negative, bool with_negative,
                             size_t max_sequence_length) const {
    const size_t batch = with_negative ? 2 : 1;
    auto request = model_->borrow();
    const auto port = model_->compiled().input(0);
    const ov::PartialShape& compiled_shape = port.get_partial_shape();
    if (compiled_shape.is_static() && (static_cast<size_t>(compiled_shape[0].get_length()) != batch ||
                                       static_cast<size_t>(compiled_shape[1].get_length()) != max_sequence_length))
        throw EngineError(ErrorCode::Runtime, "the T5 encoder was reshaped for ids " + compiled_shape.to_string() + ", this call needs [" +
                                                  std::to_string(batch) + "," + std::to_string(max_sequence_length) + "]");
    ov::Tensor ids(port.get_element_type(), ov::Shape{batch, max_sequence_length});
    if (ids.get_element_type() != ov::element::i64 && ids.get_element_type() != ov::element::i32)
        throw EngineError(ErrorCode::UnsupportedModel, "T5 encoder input ids must be i32 or i64");
    auto fill_row = [&](size_t row, const std::string& text) {
        std::vector<int64_t> tokens = tokenizer_->encode(text);
        tokens.resize(max_sequence_length, tokenizer_->pad_token_id());
        if (ids.get_element_type() == ov::element::i64)
            std::copy(tokens.begin(), tokens.end(), ids.data<int64_t>() + row * max_sequence_length);
        else
            std::transform(tokens.begin(), tokens.end(), ids.data<int32_t>() + row * max_sequence_length,
                           [](int64_t v) { return static_cast<int32_t>(v); });
    };
    if (with_negative) fill_row(0, negative);
    fill_row(with_negative ? 1 : 0, positive);
    request.write_input(port, ids);
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("T5 encoder inference failed: ") + e.what());
    }
    return copy_tensor(request->get_output_tensor(0));
}

}  // namespace ovd
