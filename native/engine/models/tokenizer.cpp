#include "models/tokenizer.hpp"

#include <climits>
#include <optional>

#include "base/errors.hpp"
#include "base/json.hpp"

namespace ovd {
namespace {

// The special-token id, looked up in the order the oracle uses; the last source that has it wins:
// tokenizer config files first, then the ids the IR's rt_info records.
int64_t find_pad_token_id(const std::filesystem::path& dir, const std::shared_ptr<ov::Model>& model) {
    std::optional<int64_t> pad, eos;
    std::string pad_text, eos_text;
    auto read_token_text = [](const Json& value) -> std::string {
        if (value.is_string()) return value.as_string();
        if (value.is_object() && value.find("content") && value.at("content").is_string()) return value.at("content").as_string();
        return {};
    };
    for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
        const auto path = dir / name;
        if (!std::filesystem::exists(path)) continue;
        const Json config = Json::parse_file(path.string());
        if (const Json* v = config.find("pad_token")) pad_text = read_token_text(*v);
        if (const Json* v = config.find("eos_token")) eos_text = read_token_text(*v);
        if (const Json* added = config.find("added_tokens_decoder"); added && added->is_object()) {
            for (const auto& [id, token] : added->as_object()) {
                const std::string text = read_token_text(token);
                if (!text.empty() && text == pad_text) pad = std::stoll(id);
                if (!text.empty() && text == eos_text) eos = std::stoll(id);
            }
        }
    }
    if (!pad && eos) pad = eos;
    const auto& rt_info = model->get_rt_info();
    if (auto it = rt_info.find("pad_token_id"); it != rt_info.end())
        pad = it->second.as<int64_t>();
    else if (!pad) {
        if (auto e = rt_info.find("eos_token_id"); e != rt_info.end()) pad = e->second.as<int64_t>();
    }
    return pad.value_or(0);
}

}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& dir) {
    if (!tokenizers_extension_loaded())
        throw EngineError(ErrorCode::Internal, "the openvino_tokenizers extension must be loaded before a tokenizer");
    const std::string xml = (dir / "openvino_tokenizer.xml").string();
    std::shared_ptr<ov::Model> model = read_ir(xml);
    auto tokenizer = std::make_shared<Tokenizer>();
    tokenizer->pad_token_id_ = find_pad_token_id(dir, model);
    if (auto it = model->get_rt_info().find("chat_template"); it != model->get_rt_info().end())
        tokenizer->chat_template_ = it->second.as<std::string>();
    tokenizer->model_ = IrModel::compile(model, "CPU", {}, xml);
    return tokenizer;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
    ov::Tensor input(ov::element::string, ov::Shape{1});
    input.data<std::string>()[0] = text;
    auto request = model_->borrow();
    request.write_input(0, input);
    request->infer();
    const ov::Tensor ids = request->get_tensor("input_ids");
    std::vector<int64_t> out(ids.get_size());
    if (ids.get_element_type() == ov::element::i64) {
        std::copy_n(ids.data<const int64_t>(), out.size(), out.begin());
    } else if (ids.get_element_type() == ov::element::i32) {
        std::copy_n(ids.data<const int32_t>(), out.size(), out.begin());
    } else {
        throw EngineError(ErrorCode::UnsupportedModel,
                          "tokenizer output input_ids has unexpected type " + ids.get_element_type().get_type_name());
    }
    return out;
}

}  // namespace ovd
