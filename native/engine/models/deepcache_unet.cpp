#include "models/deepcache_unet.hpp"

#include <optional>
#include <regex>
#include <set>
#include <vector>

#include <openvino/op/assign.hpp>
#include <openvino/op/constant.hpp>
#include <openvino/op/parameter.hpp>
#include <openvino/op/read_value.hpp>

#include "base/errors.hpp"

namespace ovd {
namespace {

// Where a node sits in the UNet, read from its friendly name: mid block, a down block, or an up block's layer (a
// resnet with its attention, the block's upsampler belonging to its last layer).
struct Place {
    enum Kind { Other, Down, Mid, Up } kind = Other;
    size_t block = 0;
    std::optional<size_t> layer;  // up blocks: resnets.<j> / attentions.<j>; upsamplers: the block's last layer
    bool upsampler = false;
};

Place place_of(const std::string& friendly_name) {
    static const std::regex block(R"(^__module\.(?:model\.)?(down_blocks|up_blocks|mid_block)(?:\.(\d+))?[./])");
    static const std::regex layer(R"(^__module\.(?:model\.)?up_blocks\.\d+\.(resnets|attentions|upsamplers)\.(\d+)[./])");
    std::smatch m;
    if (!std::regex_search(friendly_name, m, block)) return {};
    if (m[1].str() == "mid_block") return {Place::Mid, 0, std::nullopt, false};
    if (!m[2].matched) return {};
    Place p{m[1].str() == "down_blocks" ? Place::Down : Place::Up, std::stoul(m[2].str()), std::nullopt, false};
    if (p.kind == Place::Up && std::regex_search(friendly_name, m, layer)) {
        p.upsampler = m[1].str() == "upsamplers";
        if (!p.upsampler) p.layer = std::stoul(m[2].str());
    }
    return p;
}

// The up path's layers in the order they run: (block, layer) pairs.
using Layer = std::pair<size_t, size_t>;

std::vector<Layer> up_layers(const std::shared_ptr<const ov::Model>& unet) {
    std::set<Layer> layers;
    for (const auto& node : unet->get_ordered_ops()) {
        const Place p = place_of(node->get_friendly_name());
        if (p.kind == Place::Up && p.layer) layers.emplace(p.block, *p.layer);
    }
    return {layers.begin(), layers.end()};
}

// The up layer a node computes in, if any (an upsampler counts as the last layer of its block).
std::optional<Layer> layer_of(const std::string& friendly_name, const std::vector<Layer>& layers) {
    const Place p = place_of(friendly_name);
    if (p.kind != Place::Up) return std::nullopt;
    if (p.layer) return Layer{p.block, *p.layer};
    if (!p.upsampler) return std::nullopt;
    std::optional<Layer> last;
    for (const Layer& l : layers)
        if (l.first == p.block) last = l;
    return last;
}

// Nodes that hold no computation of a layer: constants and the LoRA state variables (their Assign sinks keep every
// ReadValue in the graph, the shallow one included).
bool holds_no_computation(const std::shared_ptr<ov::Node>& node) {
    return ov::is_type<ov::op::v0::Constant>(node) || ov::is_type<ov::op::util::ReadValueBase>(node) ||
           ov::is_type<ov::op::util::AssignBase>(node);
}

[[noreturn]] void cannot_cut(const std::string& why) {
    throw EngineError(ErrorCode::UnsupportedModel, "DeepCache cannot cut this UNet: " + why);
}

}  // namespace

std::shared_ptr<ov::Model> cut_deepcache_graphs(const std::shared_ptr<ov::Model>& unet, size_t branch) {
    const std::vector<Layer> layers = up_layers(unet);
    if (layers.size() < 2)
        cannot_cut("no up-block layers named __module.up_blocks.<i>.resnets.<j> (not a UNet2DConditionModel exported by optimum-intel?)");
    if (branch > layers.size() - 2)
        throw invalid_param("deepcache", "DeepCache branch " + std::to_string(branch) + " leaves no deep part: this UNet has " +
                                             std::to_string(layers.size()) + " up-block layers, so the branch is 0.." +
                                             std::to_string(layers.size() - 2));
    // The feature: what leaves the deep part's last layer (`source`) for anything outside it.
    const Layer source = layers[layers.size() - 2 - branch];
    const auto in_source = [&](const ov::Node* node) { return layer_of(node->get_friendly_name(), layers) == source; };
    std::set<ov::Output<ov::Node>> leaving;
    // (The LoRA state variables of its layers stay out: they are inputs, and their Assign sinks no computation.)
    for (const auto& node : unet->get_ordered_ops()) {
        if (!in_source(node.get()) || holds_no_computation(node)) continue;
        for (const auto& output : node->outputs()) {
            if (!output.get_element_type().is_real()) continue;
            for (const auto& target : output.get_target_inputs())
                if (!in_source(target.get_node()) && !holds_no_computation(target.get_node()->shared_from_this())) leaving.insert(output);
        }
    }
    const std::string where = "up block " + std::to_string(source.first) + " layer " + std::to_string(source.second);
    if (leaving.size() != 1) cannot_cut(std::to_string(leaving.size()) + " tensors leave " + where + " (expected one)");
    const ov::Output<ov::Node> feature = *leaving.begin();
    const std::string producer_name = feature.get_node()->get_friendly_name();

    // The shallow graph first, from a copy taken before the full graph gets its extra output.
    const std::shared_ptr<ov::Model> shallow = unet->clone();
    shallow->set_friendly_name("unet_deepcache_shallow");
    // The clone's own copy of the producer, found by its name.
    ov::Output<ov::Node> shallow_feature;
    for (const auto& node : shallow->get_ordered_ops())
        if (node->get_friendly_name() == producer_name) shallow_feature = node->output(feature.get_index());
    auto parameter = std::make_shared<ov::op::v0::Parameter>(shallow_feature.get_element_type(), shallow_feature.get_partial_shape());
    parameter->set_friendly_name(kDeepCacheFeature);
    shallow_feature.replace(parameter->output(0));
    parameter->output(0).set_names({kDeepCacheFeature});
    shallow->add_parameters({parameter});
    shallow->validate_nodes_and_infer_types();
    // Nothing of the deep part may be left: the shallow graph must not compute it again.
    for (const auto& node : shallow->get_ordered_ops()) {
        if (holds_no_computation(node)) continue;
        const std::optional<Layer> layer = layer_of(node->get_friendly_name(), layers);
        if (place_of(node->get_friendly_name()).kind == Place::Mid || (layer && *layer <= source))
            cannot_cut("the shallow part still needs " + node->get_friendly_name());
    }

    unet->add_output(feature).set_names({kDeepCacheFeature});
    return shallow;
}

}  // namespace ovd
