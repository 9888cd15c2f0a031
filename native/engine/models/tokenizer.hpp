#pragma once
// A text tokenizer run from its openvino_tokenizers IR (custom ops from the tokenizers extension).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/ir_model.hpp"

namespace ovd {

class Tokenizer {
public:
    // Reads <dir>/openvino_tokenizer.xml; compiled on CPU with no properties, as the oracle does.
    static std::shared_ptr<Tokenizer> load(const std::filesystem::path& dir);

    // Ids with special tokens and without truncation or padding.
    std::vector<int64_t> encode(const std::string& text) const;
    int64_t pad_token_id() const { return pad_token_id_; }
    // The Jinja chat template the converter stored in the IR's rt_info ("" when there is none).
    const std::string& chat_template() const { return chat_template_; }

private:
    std::shared_ptr<IrModel> model_;
    int64_t pad_token_id_ = 0;
    std::string chat_template_;
};

}  // namespace ovd
