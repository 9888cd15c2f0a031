#include "models/deepcache_unet.hpp"

#include <regex>
#include <set>

#include <openvino/op/assign.hpp>
#include <openvino/op/constant.hpp>
#include <openvino/op/parameter.hpp>
#include <openvino/op/read_value.hpp>

#include "base/errors.hpp"

namespace ovd {
namespace {

// Which UNet block a node belongs to, read from its friendly name.
struct Block {
    enum Kind { Other, Down, Mid, Up } kind = Other;
    size_t index = 0;
};

Block block_of(const std::string& friendly_name) {
    static const std::regex pattern(R"(^__module\.(?:model\.)?(down_blocks|up_blocks|mid_block)(?:\.(\d+))?[./])");
    std::smatch m;
    if (!std::regex_search(friendly_name, m, pattern)) return {};
    const std::string kind = m[1].str();
    if (kind == "mid_block") return {Block::Mid, 0};
    if (!m[2].matched) return {};
    return {kind == "down_blocks" ? Block::Down : Block::Up, std::stoul(m[2].str())};
}

bool is_up_block(const Block& b, size_t index) { return b.kind == Block::Up && b.index == index; }

// Nodes that hold no computation of a block: constants and the LoRA state variables (their Assign sinks keep every
// ReadValue in the graph, the shallow one included).
bool holds_no_computation(const std::shared_ptr<ov::Node>& node) {
    return ov::is_type<ov::op::v0::Constant>(node) || ov::is_type<ov::op::util::ReadValueBase>(node) ||
           ov::is_type<ov::op::util::AssignBase>(node);
}

[[noreturn]] void cannot_cut(const std::string& why) {
    throw EngineError(ErrorCode::UnsupportedModel, "DeepCache cannot cut this UNet: " + why);
}

}  // namespace

size_t unet_up_block_count(const std::shared_ptr<const ov::Model>& unet) {
    size_t count = 0;
    for (const auto& node : unet->get_ordered_ops()) {
        const Block b = block_of(node->get_friendly_name());
        if (b.kind == Block::Up) count = std::max(count, b.index + 1);
    }
    return count;
}

std::shared_ptr<ov::Model> cut_deepcache_graphs(const std::shared_ptr<ov::Model>& unet, size_t branch) {
    const size_t up_blocks = unet_up_block_count(unet);
    if (up_blocks < 2) cannot_cut("no up blocks named __module.up_blocks.<i> (not a UNet2DConditionModel exported by optimum-intel?)");
    if (branch > up_blocks - 2)
        throw invalid_param("deepcache", "DeepCache branch " + std::to_string(branch) + " leaves no deep part: this UNet has " +
                                             std::to_string(up_blocks) + " up blocks, so the branch is 0.." +
                                             std::to_string(up_blocks - 2));
    // The feature: what leaves up block `source` (the last one of the deep part) for anything outside it.
    const size_t source = up_blocks - 2 - branch;
    std::set<std::pair<std::string, size_t>> leaving;
    for (const auto& node : unet->get_ordered_ops()) {
        if (!is_up_block(block_of(node->get_friendly_name()), source)) continue;
        for (const auto& output : node->outputs()) {
            if (!output.get_element_type().is_real()) continue;
            for (const auto& target : output.get_target_inputs())
                if (!is_up_block(block_of(target.get_node()->get_friendly_name()), source))
                    leaving.emplace(node->get_friendly_name(), output.get_index());
        }
    }
    if (leaving.size() != 1)
        cannot_cut(std::to_string(leaving.size()) + " tensors leave up block " + std::to_string(source) + " (expected one)");
    const auto& [producer_name, output_index] = *leaving.begin();

    // The shallow graph first, from a copy taken before the full graph gets its extra output.
    const std::shared_ptr<ov::Model> shallow = unet->clone();
    shallow->set_friendly_name("unet_deepcache_shallow");
    ov::Output<ov::Node> shallow_feature;
    for (const auto& node : shallow->get_ordered_ops())
        if (node->get_friendly_name() == producer_name) shallow_feature = node->output(output_index);
    auto parameter = std::make_shared<ov::op::v0::Parameter>(shallow_feature.get_element_type(), shallow_feature.get_partial_shape());
    parameter->set_friendly_name(kDeepCacheFeature);
    parameter->output(0).set_names({kDeepCacheFeature});
    shallow_feature.replace(parameter->output(0));
    shallow->add_parameters({parameter});
    shallow->validate_nodes_and_infer_types();
    // Nothing of the deep part may be left: the shallow graph must not compute it again.
    for (const auto& node : shallow->get_ordered_ops()) {
        if (holds_no_computation(node)) continue;
        const Block b = block_of(node->get_friendly_name());
        const bool deep = b.kind == Block::Mid || (b.kind == Block::Down && b.index > branch) || (b.kind == Block::Up && b.index <= source);
        if (deep) cannot_cut("the shallow part still needs " + node->get_friendly_name());
    }

    for (const auto& node : unet->get_ordered_ops())
        if (node->get_friendly_name() == producer_name) {
            ov::Output<ov::Node> feature = unet->add_output(node->output(output_index));
            feature.set_names({kDeepCacheFeature});
        }
    return shallow;
}

}  // namespace ovd
