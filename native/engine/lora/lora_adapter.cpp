#include "lora/lora_adapter.hpp"

#include <regex>

#include "base/errors.hpp"
#include "lora/safetensors.hpp"

namespace ovd {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// kohya UNet names lose their module structure when '.' becomes '_'; put back the names that
// contain underscores themselves.
std::string kohya_unet_to_module_path(std::string key) {
    replace_all(key, "_", ".");
    static const std::vector<std::pair<std::string, std::string>> kModuleNames = {
        {"lora.unet", "lora_unet"},
        {"lora.te", "lora_te"},
        {"base.model", "base_model"},
        {"input.blocks", "down_blocks"},
        {"down.blocks", "down_blocks"},
        {"middle.block", "mid_block"},
        {"mid.block", "mid_block"},
        {"output.blocks", "up_blocks"},
        {"up.blocks", "up_blocks"},
        {"transformer.blocks", "transformer_blocks"},
        {"to.q", "to_q"},
        {"to.k", "to_k"},
        {"to.v", "to_v"},
        {"to.out.0", "to_out"},
        {"proj.in", "proj_in"},
        {"proj.out", "proj_out"},
        {"emb.layers", "time_emb_proj"},
        {"time.emb.proj", "time_emb_proj"},
        {"conv.shortcut", "conv_shortcut"},
        {"skip.connection", "conv_shortcut"},
    };
    for (const auto& [from, to] : kModuleNames) replace_all(key, from, to);
    // Other embedding layers carry a trailing ".<index>" that the module path does not have.
    if (contains(key, "emb") && !contains(key, "time_emb_proj")) key = std::regex_replace(key, std::regex(R"(\.\d+(?=\D*$))"), "");
    if (contains(key, ".in.")) replace_all(key, "in.layers.2", "conv1");
    if (contains(key, ".out.")) replace_all(key, "out.layers.3", "conv2");
    if (contains(key, "downsamplers") || contains(key, "upsamplers")) replace_all(key, "op", "conv");
    return key;
}

// SGM (original Stable Diffusion) block numbering -> diffusers blocks, for kohya files trained on it.
std::string sgm_to_diffusers(const std::string& key) {
    std::smatch m;
    static const std::regex input_re(R"(^(lora_unet_)input_blocks_(\d+)_(\d+)_(.*)$)");
    static const std::regex middle_re(R"(^(lora_unet_)middle_block_(\d+)_(.*)$)");
    static const std::regex output_re(R"(^(lora_unet_)output_blocks_(\d+)_(\d+)_(.*)$)");
    if (std::regex_match(key, m, input_re)) {
        const int block = std::stoi(m[2]);
        const int inner = std::stoi(m[3]);
        const std::string rest = m[4];
        const bool is_op = rest.rfind("op", 0) == 0;
        const std::string kind = is_op ? "downsamplers" : inner == 0 ? "resnets" : "attentions";
        const int index = is_op ? 0 : (block - 1) % 3;
        return std::string(m[1]) + "down_blocks_" + std::to_string((block - 1) / 3) + "_" + kind + "_" + std::to_string(index) + "_" + rest;
    }
    if (std::regex_match(key, m, middle_re)) {
        static const char* kMid[] = {"resnets_0", "attentions_0", "resnets_1"};
        const int block = std::stoi(m[2]);
        if (block < 0 || block > 2) throw invalid_argument("unknown SGM middle block in LoRA key " + key);
        return std::string(m[1]) + "mid_block_" + kMid[block] + "_" + std::string(m[3]);
    }
    if (std::regex_match(key, m, output_re)) {
        const int block = std::stoi(m[2]);
        const int inner = std::stoi(m[3]);
        const std::string rest = m[4];
        const bool upsampler = contains(rest, "conv") && !contains(rest, "resnet") && inner > 0 && rest.rfind("conv", 0) == 0;
        const std::string kind = upsampler ? "upsamplers" : inner == 0 ? "resnets" : "attentions";
        const int index = upsampler ? 0 : block % 3;
        return std::string(m[1]) + "up_blocks_" + std::to_string(block / 3) + "_" + kind + "_" + std::to_string(index) + "_" + rest;
    }
    return key;
}

// FLUX adapters (the oracle's flux_adapter_normalization): a rule maps a whole (regex_match) layer name to
// one or more diffusers layers; several targets split B's rows (equally, or by fixed sizes) and share A.
struct FluxRule {
    std::string pattern;
    size_t group;                                              // the capture holding the block index
    std::vector<std::pair<std::string, std::string>> targets;  // prefix + block index + suffix
    std::vector<size_t> rows;                                  // empty: equal parts
};

const std::vector<FluxRule>& flux_kohya_rules() {
    static const std::string d = "transformer.transformer_blocks.", s = "transformer.single_transformer_blocks.";
    static const std::vector<FluxRule> rules = {
        {"lora_unet_double_blocks_(\\d+)_img_attn_proj", 1, {{d, ".attn.to_out.0"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_img_mlp_0", 1, {{d, ".ff.net.0.proj"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_img_mlp_2", 1, {{d, ".ff.net.2"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_img_mod_lin", 1, {{d, ".norm1.linear"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_txt_attn_proj", 1, {{d, ".attn.to_add_out"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_txt_mlp_0", 1, {{d, ".ff_context.net.0.proj"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_txt_mlp_2", 1, {{d, ".ff_context.net.2"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_txt_mod_lin", 1, {{d, ".norm1_context.linear"}}, {}},
        {"lora_unet_single_blocks_(\\d+)_linear2", 1, {{s, ".proj_out"}}, {}},
        {"lora_unet_single_blocks_(\\d+)_modulation_lin", 1, {{s, ".norm.linear"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_img_attn_qkv", 1, {{d, ".attn.to_q"}, {d, ".attn.to_k"}, {d, ".attn.to_v"}}, {}},
        {"lora_unet_double_blocks_(\\d+)_txt_attn_qkv", 1, {{d, ".attn.add_q_proj"}, {d, ".attn.add_k_proj"}, {d, ".attn.add_v_proj"}}, {}},
        // FLUX.1's sizes, fixed as in the oracle.
        {"lora_unet_single_blocks_(\\d+)_linear1",
         1,
         {{s, ".attn.to_q"}, {s, ".attn.to_k"}, {s, ".attn.to_v"}, {s, ".proj_mlp"}},
         {3072, 3072, 3072, 12288}},
    };
    return rules;
}

const std::vector<FluxRule>& flux_xlabs_rules() {
    static const std::string d = "transformer.transformer_blocks.", s = "transformer.single_transformer_blocks.";
    static const std::vector<FluxRule> rules = {
        {"(diffusion_model\\.)?double_blocks\\.(\\d+).*processor\\.proj_lora1", 2, {{d, ".attn.to_out.0"}}, {}},
        {"(diffusion_model\\.)?double_blocks\\.(\\d+).*processor\\.proj_lora2", 2, {{d, ".attn.to_add_out"}}, {}},
        {"(diffusion_model\\.)?single_blocks\\.(\\d+).*proj_lora", 2, {{s, ".attn.to_out.0"}}, {}},
        {"(diffusion_model\\.)?double_blocks\\.(\\d+).*processor\\.qkv_lora2",
         2,
         {{d, ".attn.add_q_proj"}, {d, ".attn.add_k_proj"}, {d, ".attn.add_v_proj"}},
         {}},
        {"(diffusion_model\\.)?double_blocks\\.(\\d+).*processor\\.qkv_lora1",
         2,
         {{d, ".attn.to_q"}, {d, ".attn.to_k"}, {d, ".attn.to_v"}},
         {}},
        {"(diffusion_model\\.)?double_blocks\\.(\\d+).*qkv_lora", 2, {{s, ".norm.linear"}}, {}},
    };
    return rules;
}

// Rows [begin, begin + count) of B [out, rank], with A shared.
LoraPair row_slice(const LoraPair& pair, size_t begin, size_t count) {
    LoraPair part = pair;
    part.out = count;
    part.b.assign(pair.b.begin() + begin * pair.rank, pair.b.begin() + (begin + count) * pair.rank);
    return part;
}

// One layer's normalized entries under the FLUX rules (`rules` null: the name stays).
std::vector<std::pair<std::string, LoraPair>> flux_entries(const std::string& path, const std::string& layer, LoraPair pair,
                                                           const std::vector<FluxRule>* rules) {
    if (rules) {
        for (const FluxRule& rule : *rules) {
            std::smatch m;
            const std::regex re(rule.pattern);
            if (!std::regex_match(layer, m, re)) continue;
            const std::string block = m[rule.group];
            std::vector<size_t> rows = rule.rows;
            if (rows.empty()) rows.assign(rule.targets.size(), pair.out / rule.targets.size());
            size_t total = 0;
            for (size_t r : rows) total += r;
            if (total != pair.out)
                throw invalid_argument("LoRA " + path + ": layer '" + layer + "' has " + std::to_string(pair.out) +
                                       " output rows; its split needs " + std::to_string(total));
            std::vector<std::pair<std::string, LoraPair>> out;
            size_t begin = 0;
            for (size_t i = 0; i < rule.targets.size(); ++i) {
                out.emplace_back(rule.targets[i].first + block + rule.targets[i].second,
                                 rule.targets.size() == 1 ? pair : row_slice(pair, begin, rows[i]));
                begin += rows[i];
            }
            return out;
        }
    }
    std::string key = layer;
    if (rules == &flux_kohya_rules()) {
        if (key.rfind("lora_te1_", 0) == 0) key.replace(0, 9, "lora_te_");
        key = std::regex_replace(key, std::regex("lora.unet"), "transformer");
    }
    return {{key, std::move(pair)}};
}

}  // namespace

std::string normalize_sd_lora_key(const std::string& raw) {
    std::string key = raw;
    replace_all(key, "lora.unet", "lora_unet");
    if (key.rfind("lora_unet", 0) == 0) return kohya_unet_to_module_path(key);
    if (contains(key, "lora_te")) return key;  // text encoder names match with '.' read as '_'
    key = "lora_unet." + key;
    replace_all(key, ".processor.", ".");
    return key;
}

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const std::string& path, LoraNaming naming) {
    const SafetensorsFile file = SafetensorsFile::read(path);
    static const std::regex a_re(R"(^(.*)[_.]lora[_.](?:A|down)\.weight$)");
    static const std::regex b_re(R"(^(.*)[_.]lora[_.](?:B|up)\.weight$)");
    static const std::regex xlabs_a_re(R"(^(.*lora[12])\.down\.weight$)");
    static const std::regex xlabs_b_re(R"(^(.*lora[12])\.up\.weight$)");
    static const std::regex alpha_re(R"(^(.*)\.alpha$)");
    std::map<std::string, std::pair<std::string, std::string>> groups;  // layer -> (A name, B name)
    bool sgm_layout = false;
    for (const auto& [name, tensor] : file.tensors()) {
        std::smatch m;
        if (std::regex_match(name, m, a_re) || std::regex_match(name, m, xlabs_a_re))
            groups[m[1]].first = name;
        else if (std::regex_match(name, m, b_re) || std::regex_match(name, m, xlabs_b_re))
            groups[m[1]].second = name;
        else if (std::regex_match(name, m, alpha_re))
            continue;  // read, ignored (see load())
        else
            continue;
        sgm_layout = sgm_layout || contains(name, "input_blocks") || contains(name, "middle_block") || contains(name, "output_blocks");
    }
    auto adapter = std::make_shared<LoraAdapter>();
    adapter->path_ = path;
    // FLUX: XLabs rules if any layer name holds "processor", else kohya-FLUX rules if any holds "lora_unet".
    const std::vector<FluxRule>* flux_rules = nullptr;
    if (naming == LoraNaming::Flux) {
        for (const auto& [layer, names] : groups)
            if (contains(layer, "processor")) flux_rules = &flux_xlabs_rules();
        if (!flux_rules)
            for (const auto& [layer, names] : groups)
                if (contains(layer, "lora_unet")) flux_rules = &flux_kohya_rules();
    }
    sgm_layout = sgm_layout && naming == LoraNaming::StableDiffusion;
    for (const auto& [layer, names] : groups) {
        if (names.first.empty() || names.second.empty())
            throw invalid_argument("bad LoRA file " + path + ": layer '" + layer + "' has " +
                                   (names.first.empty() ? "no A (lora_down)" : "no B (lora_up)") + " weight");
        if (sgm_layout && contains(layer, "text")) continue;  // SGM files' text-encoder keys are not converted
        const auto& ta = file.tensors().at(names.first);
        const auto& tb = file.tensors().at(names.second);
        if (ta.shape.size() < 2 || tb.shape.size() < 2 || ta.shape[0] != tb.shape[1])
            throw invalid_argument("bad LoRA file " + path + ": layer '" + layer + "' has mismatched A/B shapes");
        LoraPair pair;
        pair.rank = ta.shape[0];
        pair.out = tb.shape[0];
        pair.in = 1;
        for (size_t d = 1; d < ta.shape.size(); ++d) pair.in *= ta.shape[d];
        if (ta.shape.size() == 4) {
            pair.pointwise_conv_shape = true;
            pair.non_pointwise = ta.shape[2] != 1 || ta.shape[3] != 1;
            pair.in = ta.shape[1];
        }
        pair.a = file.to_f32(names.first);
        pair.b = file.to_f32(names.second);
        if (naming == LoraNaming::Flux) {
            for (auto& [key, part] : flux_entries(path, layer, std::move(pair), flux_rules)) adapter->pairs_.emplace(key, std::move(part));
        } else if (naming == LoraNaming::Raw) {
            adapter->pairs_[layer] = std::move(pair);
        } else {
            const std::string key = normalize_sd_lora_key(sgm_layout ? sgm_to_diffusers(layer) : layer);
            adapter->pairs_[key] = std::move(pair);
        }
    }
    if (adapter->pairs_.empty()) throw invalid_argument("bad LoRA file " + path + ": no lora_A/lora_B (lora_down/lora_up) pairs found");
    return adapter;
}

}  // namespace ovd
