#include "models/qwen3_text_encoder.hpp"

#include <algorithm>

#include "base/errors.hpp"

namespace ovd {

std::shared_ptr<Qwen3TextEncoder> Qwen3TextEncoder::load(const ModelFolder& folder, const std::string& device,
                                                         const PropertyMap& properties, const std::string& family, size_t static_length,
                                                         size_t static_batch) {
    auto encoder = load_model(folder, device, properties, static_length, static_batch);
    // The template as stored (Jinja source, so its newlines are the two characters "\n"). Qwen3's template, and any
    // that renders the same single-user-turn text, has the ChatML markers and the empty think block.
    const std::string& tpl = encoder->tokenizer_->chat_template();
    for (const char* marker : {"<|im_start|>", "<|im_end|>", "assistant", "<think>\\n\\n</think>\\n\\n"})
        if (tpl.find(marker) == std::string::npos)
            throw EngineError(ErrorCode::UnsupportedModel, folder.root().string() +
                                                               "/tokenizer: the chat template is not a Qwen3 one (no '" + marker + "'); " +
                                                               family + " needs its Qwen3 tokenizer");
    return encoder;
}

std::shared_ptr<Qwen3TextEncoder> Qwen3TextEncoder::load_for_template(const ModelFolder& folder, const std::string& device,
                                                                      const PropertyMap& properties, size_t static_length,
                                                                      size_t static_batch) {
    return load_model(folder, device, properties, static_length, static_batch);
}

std::shared_ptr<Qwen3TextEncoder> Qwen3TextEncoder::load_model(const ModelFolder& folder, const std::string& device,
                                                               const PropertyMap& properties, size_t static_length, size_t static_batch) {
    auto encoder = std::make_shared<Qwen3TextEncoder>();
    encoder->tokenizer_ = Tokenizer::load(folder.file("tokenizer/openvino_tokenizer.xml").parent_path());
    const std::string xml = folder.file("text_encoder/openvino_model.xml").string();
    IrModel::Rewrite rewrite;
    if (static_length)
        rewrite = [&](const std::shared_ptr<ov::Model>& model) {
            const ov::PartialShape ids{static_cast<int64_t>(static_batch), static_cast<int64_t>(static_length)};
            reshape_inputs(
                model,
                [&](const std::string& name, const ov::PartialShape&) -> std::optional<ov::PartialShape> {
                    if (name == "input_ids" || name == "attention_mask") return ids;
                    return std::nullopt;
                },
                xml);
        };
    encoder->model_ = IrModel::load(xml, device, properties, rewrite);
    return encoder;
}

std::string Qwen3TextEncoder::chat_prompt(const std::string& prompt) {
    return "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
}

std::vector<size_t> Qwen3TextEncoder::infer(InferRequestPool::Lease& request, std::vector<std::vector<int64_t>> tokens,
                                            size_t max_tokens) const {
    const auto& compiled = model_->compiled();
    ov::Tensor ids = request.input_buffer(compiled.input("input_ids"), ov::Shape{tokens.size(), max_tokens});
    ov::Tensor mask = request.input_buffer(compiled.input("attention_mask"), ov::Shape{tokens.size(), max_tokens});
    if (ids.get_element_type() != ov::element::i64 || mask.get_element_type() != ov::element::i64)
        throw EngineError(ErrorCode::UnsupportedModel, "the Qwen text encoder's input_ids and attention_mask must be i64");
    std::vector<size_t> lengths;
    for (size_t row = 0; row < tokens.size(); ++row) {
        lengths.push_back(std::min(tokens[row].size(), max_tokens));
        tokens[row].resize(max_tokens, tokenizer_->pad_token_id());
        std::copy(tokens[row].begin(), tokens[row].end(), ids.data<int64_t>() + row * max_tokens);
        int64_t* m = mask.data<int64_t>() + row * max_tokens;
        std::fill_n(m, max_tokens, int64_t{0});
        std::fill_n(m, lengths.back(), int64_t{1});
    }
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("Qwen text encoder inference failed: ") + e.what());
    }
    return lengths;
}

std::vector<ov::Tensor> Qwen3TextEncoder::encode_rows(const std::vector<std::vector<int64_t>>& tokens, size_t max_tokens,
                                                      size_t drop) const {
    auto request = model_->borrow();
    const std::vector<size_t> lengths = infer(request, tokens, max_tokens);
    const ov::Tensor hidden = request->get_output_tensor(0);
    const size_t width = hidden.get_shape().back();
    std::vector<ov::Tensor> out;
    for (size_t row = 0; row < tokens.size(); ++row) {
        out.emplace_back(ov::element::f32, ov::Shape{lengths[row] - drop, width});
        std::copy_n(hidden.data<const float>() + (row * max_tokens + drop) * width, (lengths[row] - drop) * width,
                    out.back().data<float>());
    }
    return out;
}

ov::Tensor Qwen3TextEncoder::encode(const std::string& prompt, size_t max_sequence_length) const {
    return encode_batch({prompt}, max_sequence_length).front();
}

std::vector<ov::Tensor> Qwen3TextEncoder::encode_batch(const std::vector<std::string>& prompts, size_t max_sequence_length) const {
    std::vector<std::vector<int64_t>> tokens;
    for (const std::string& prompt : prompts) tokens.push_back(tokenizer_->encode(chat_prompt(prompt)));
    return encode_rows(tokens, max_sequence_length, 0);
}

ov::Tensor Qwen3TextEncoder::encode_text(const std::string& text, size_t max_tokens, size_t drop) const {
    return encode_text_batch({text}, max_tokens, drop).front();
}

std::vector<ov::Tensor> Qwen3TextEncoder::encode_text_batch(const std::vector<std::string>& texts, size_t max_tokens, size_t drop) const {
    std::vector<std::vector<int64_t>> tokens;
    for (const std::string& text : texts) {
        tokens.push_back(tokenizer_->encode(text));
        const size_t length = std::min(tokens.back().size(), max_tokens);
        if (length <= drop)
            throw invalid_argument("the prompt template gives " + std::to_string(length) + " tokens after the cut, not more than its " +
                                   std::to_string(drop) + "-token prefix: nothing is left to encode");
    }
    // Padded to max_tokens and masked, as the oracle (the real rows are the same either way on AVX-512, not on AVX2).
    return encode_rows(tokens, max_tokens, drop);
}

ov::Tensor Qwen3TextEncoder::encode_outputs(const std::string& prompt, size_t max_sequence_length,
                                            const std::vector<std::string>& outputs) const {
    const auto& compiled = model_->compiled();
    std::vector<ov::Output<const ov::Node>> ports;
    size_t width = 0;
    for (const std::string& name : outputs) {
        try {
            ports.push_back(compiled.output(name));
        } catch (const std::exception&) {
            throw EngineError(ErrorCode::UnsupportedModel, "the Qwen3 text encoder has no output '" + name + "'");
        }
        const ov::PartialShape& shape = ports.back().get_partial_shape();
        if (shape.rank().is_dynamic() || shape.size() != 3 || shape[2].is_dynamic())
            throw EngineError(ErrorCode::UnsupportedModel, "the Qwen3 text encoder's output '" + name + "' is not [B, L, D]");
        width += static_cast<size_t>(shape[2].get_length());
    }
    ov::Tensor out(ov::element::f32, ov::Shape{max_sequence_length, width});
    if (max_sequence_length == 0) return out;
    auto request = model_->borrow();
    infer(request, {tokenizer_->encode(chat_prompt(prompt))}, max_sequence_length);
    size_t offset = 0;
    for (const auto& port : ports) {
        const ov::Tensor hidden = request->get_tensor(port);
        const size_t part = hidden.get_shape().back();
        const float* src = hidden.data<const float>();
        float* dst = out.data<float>();
        for (size_t row = 0; row < max_sequence_length; ++row) std::copy_n(src + row * part, part, dst + row * width + offset);
        offset += part;
    }
    return out;
}

}  // namespace ovd
