#include "models/qwen3_text_encoder.hpp"

#include <algorithm>

#include "base/errors.hpp"

namespace ovd {

std::shared_ptr<Qwen3TextEncoder> Qwen3TextEncoder::load(const ModelFolder& folder, const std::string& device,
                                                         const PropertyMap& properties) {
    auto encoder = std::make_shared<Qwen3TextEncoder>();
    encoder->tokenizer_ = Tokenizer::load(folder.file("tokenizer/openvino_tokenizer.xml").parent_path());
    // The template as stored (Jinja source, so its newlines are the two characters "\n"). Qwen3's template, and any
    // that renders the same single-user-turn text, has the ChatML markers and the empty think block.
    const std::string& tpl = encoder->tokenizer_->chat_template();
    for (const char* marker : {"<|im_start|>", "<|im_end|>", "assistant", "<think>\\n\\n</think>\\n\\n"})
        if (tpl.find(marker) == std::string::npos)
            throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() +
                                                               "/tokenizer: the chat template is not a Qwen3 one (no '" + marker +
                                                               "'); Z-Image needs its Qwen3 tokenizer");
    encoder->model_ = IrModel::load(folder.file("text_encoder/openvino_model.xml").string(), device, properties);
    return encoder;
}

std::string Qwen3TextEncoder::chat_prompt(const std::string& prompt) {
    return "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
}

ov::Tensor Qwen3TextEncoder::encode(const std::string& prompt, size_t max_sequence_length) const {
    std::vector<int64_t> tokens = tokenizer_->encode(chat_prompt(prompt));
    const size_t length = std::min(tokens.size(), max_sequence_length);
    tokens.resize(max_sequence_length, tokenizer_->pad_token_id());
    auto request = model_->borrow();
    const auto& compiled = model_->compiled();
    ov::Tensor ids = request.input_buffer(compiled.input("input_ids"), ov::Shape{1, max_sequence_length});
    ov::Tensor mask = request.input_buffer(compiled.input("attention_mask"), ov::Shape{1, max_sequence_length});
    if (ids.get_element_type() != ov::element::i64 || mask.get_element_type() != ov::element::i64)
        throw EngineError(ErrorCode::UnsupportedModel, "the Qwen3 text encoder's input_ids and attention_mask must be i64");
    std::copy(tokens.begin(), tokens.end(), ids.data<int64_t>());
    int64_t* m = mask.data<int64_t>();
    std::fill_n(m, max_sequence_length, 0);
    std::fill_n(m, length, 1);
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("Qwen3 text encoder inference failed: ") + e.what());
    }
    const ov::Tensor hidden = request->get_output_tensor(0);
    const size_t width = hidden.get_shape().back();
    ov::Tensor out(ov::element::f32, ov::Shape{length, width});
    std::copy_n(hidden.data<const float>(), length * width, out.data<float>());
    return out;
}

}  // namespace ovd
