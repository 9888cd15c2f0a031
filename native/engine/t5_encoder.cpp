#include "t5_encoder.hpp"

#include <algorithm>

#include "errors.hpp"

namespace ovd {

std::shared_ptr<T5Encoder> T5Encoder::load(const ModelFolder& folder, const std::string& component, const std::string& device,
                                           const PropertyMap& properties) {
    auto encoder = std::make_shared<T5Encoder>();
    std::string tokenizer_component = component;
    tokenizer_component.replace(0, std::string("text_encoder").size(), "tokenizer");
    encoder->tokenizer_ = Tokenizer::load(folder.file(tokenizer_component + "/openvino_tokenizer.xml").parent_path());
    encoder->model_ = IrModel::load(folder.file(component + "/openvino_model.xml").string(), device, properties);
    return encoder;
}

ov::Tensor T5Encoder::encode(const std::string& positive, const std::string& negative, bool with_negative,
                             size_t max_sequence_length) const {
    const size_t batch = with_negative ? 2 : 1;
    auto request = model_->borrow();
    const auto port = model_->compiled().input(0);
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
    request->set_tensor(port, ids);
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("T5 encoder inference failed: ") + e.what());
    }
    return copy_tensor(request->get_output_tensor(0));
}

}  // namespace ovd
