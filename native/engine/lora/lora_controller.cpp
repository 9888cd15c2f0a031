#include "lora/lora_controller.hpp"

#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <openvino/op/util/variable.hpp>
#include <openvino/opsets/opset13.hpp>

#include "base/errors.hpp"

namespace ovd {
namespace {

using namespace ov::opset13;

// True when the node's value depends on no Parameter: a weight, possibly through decompression.
bool is_weight(const ov::Output<ov::Node>& output, int depth = 6) {
    const auto node = output.get_node_shared_ptr();
    if (ov::is_type<Constant>(node)) return true;
    if (ov::is_type<Parameter>(node) || depth == 0 || node->get_input_size() == 0) return false;
    for (const auto& input : node->input_values())
        if (!is_weight(input, depth - 1)) return false;
    return true;
}

struct Match {
    std::shared_ptr<ov::Node> node;
    std::vector<const LoraPair*> pairs;  // per adapter
};

// Finds, for each MatMul/Convolution with a weight, the first key (in sorted order) of each adapter
// whose part after `prefix` occurs in the layer's name, read with '.' or with '_' separators.
std::vector<Match> match_layers(const std::shared_ptr<ov::Model>& model, const std::vector<std::shared_ptr<const LoraAdapter>>& adapters,
                                const std::string& prefix, std::vector<std::string>& matched_keys) {
    std::vector<Match> matches;
    for (const auto& node : model->get_ordered_ops()) {
        if (!ov::is_type<MatMul>(node) && !ov::is_type<Convolution>(node)) continue;
        if (node->get_input_size() < 2 || !is_weight(node->input_value(1))) continue;
        const std::string name = node->get_friendly_name();
        std::string underscored = name;
        std::replace(underscored.begin(), underscored.end(), '.', '_');
        Match match{node, std::vector<const LoraPair*>(adapters.size(), nullptr)};
        bool any = false;
        for (size_t i = 0; i < adapters.size(); ++i) {
            for (const auto& [key, pair] : adapters[i]->pairs()) {
                if (key.compare(0, prefix.size(), prefix) != 0) continue;
                const std::string rest = key.substr(prefix.size());
                if (rest.empty() || (name.find(rest) == std::string::npos && underscored.find(rest) == std::string::npos)) continue;
                if (pair.non_pointwise)
                    throw invalid_argument("LoRA " + adapters[i]->path() + ": layer '" + key +
                                           "' is a convolution larger than 1x1, which LoRA cannot be applied to here");
                match.pairs[i] = &pair;
                matched_keys.push_back(std::to_string(i) + ":" + key);
                any = true;
                break;
            }
        }
        if (any) matches.push_back(std::move(match));
    }
    return matches;
}

// y + ((x A^T) * alpha) B^T, computed in y's element type. For 1x1 convolutions, as in the oracle,
// x [N, C, H, W] is transposed to [H, W, N, C] for the products and the result transposed back.
// Node for node the oracle's graph: any other arrangement of the same products rounds differently
// on the CPU plugin (see docs/lora.md). Every node it adds is named after the layer (<layer>/lora/...), so that the
// branch counts as part of the layer's module (DeepCache's cut reads modules from names).
ov::Output<ov::Node> lora_branch(const std::shared_ptr<ov::Node>& layer, const ov::Output<ov::Node>& a, const ov::Output<ov::Node>& alpha,
                                 const ov::Output<ov::Node>& b) {
    const ov::element::Type type = layer->get_output_element_type(0);
    size_t count = 0;
    auto named = [&](const std::shared_ptr<ov::Node>& node) -> ov::Output<ov::Node> {
        node->set_friendly_name(layer->get_friendly_name() + "/lora/" + node->get_type_name() + "_" + std::to_string(count++));
        return node->output(0);
    };
    auto as_type = [&](const ov::Output<ov::Node>& v) -> ov::Output<ov::Node> {
        return v.get_element_type() == type ? v : named(std::make_shared<Convert>(v, type));
    };
    // [a, b, c, d] -> [c, d, a, b], its own inverse.
    auto swap_pairs = [&](const ov::Output<ov::Node>& v) -> ov::Output<ov::Node> {
        return named(std::make_shared<Transpose>(v, Constant::create(ov::element::i32, ov::Shape{4}, std::vector<int32_t>{2, 3, 0, 1})));
    };
    const ov::PartialShape& y = layer->get_output_partial_shape(0);
    const bool spatial = y.rank().is_static() && y.rank().get_length() == 4 && y[1].is_static() && y[1].get_length() > 1;
    ov::Output<ov::Node> branch = layer->input_value(0);
    if (spatial) branch = swap_pairs(branch);
    branch = named(std::make_shared<MatMul>(branch, as_type(a), false, true));
    branch = named(std::make_shared<Multiply>(branch, as_type(alpha)));
    branch = named(std::make_shared<MatMul>(branch, as_type(b), false, true));
    return spatial ? swap_pairs(branch) : branch;
}

}  // namespace

std::string choices_tag(const std::vector<AppliedAdapter>& choices) {
    std::ostringstream tag;
    tag.precision(9);
    for (const auto& c : choices) tag << c.index << '=' << c.alpha << ';';
    return tag.str();
}

std::shared_ptr<LoraController> LoraController::attach(const std::shared_ptr<ov::Model>& model,
                                                       const std::vector<std::shared_ptr<const LoraAdapter>>& adapters,
                                                       const std::string& prefix, std::vector<std::string>& matched_keys) {
    const std::vector<Match> matches = match_layers(model, adapters, prefix, matched_keys);
    if (matches.empty()) return nullptr;
    auto controller = std::make_shared<LoraController>();
    size_t k = 0;
    for (const Match& match : matches) {
        const LoraPair* any = nullptr;
        for (const LoraPair* p : match.pairs)
            if (p) any = p;
        const size_t in = any->in, out = any->out;
        for (const LoraPair* p : match.pairs)
            if (p && (p->in != in || p->out != out))
                throw invalid_argument("LoRA adapters disagree on the shape of layer " + match.node->get_friendly_name());
        Layer layer;
        layer.in = in;
        layer.out = out;
        layer.pairs = match.pairs;
        const std::string base = "lora_state_" + std::to_string(k++) + match.node->get_friendly_name();
        layer.state_a = base + ".A";
        layer.state_alpha = base + ".alpha";
        layer.state_b = base + ".B";
        // No initializer: apply() sets every state before a request's first use.
        auto make_state = [&](const std::string& id, ov::PartialShape shape) -> ov::Output<ov::Node> {
            auto variable = std::make_shared<ov::op::util::Variable>(ov::op::util::VariableInfo{shape, ov::element::f32, id});
            auto read = std::make_shared<ReadValue>(variable);
            model->add_sinks({std::make_shared<Assign>(read, variable)});
            model->add_variables({variable});
            return read;
        };
        const ov::Dimension rank = ov::Dimension::dynamic();
        auto a = make_state(layer.state_a, ov::PartialShape{rank, static_cast<int64_t>(in)});
        auto alpha = make_state(layer.state_alpha, ov::PartialShape{1, rank});
        auto b = make_state(layer.state_b, ov::PartialShape{static_cast<int64_t>(out), rank});
        const auto& node = match.node;
        auto consumers = node->output(0).get_target_inputs();
        auto sum = std::make_shared<Add>(node, lora_branch(node, a, alpha, b));
        sum->set_friendly_name(node->get_friendly_name() + "/lora/Add");
        for (auto& consumer : consumers) consumer.replace_source_output(sum);
        controller->layers_.push_back(std::move(layer));
    }
    model->validate_nodes_and_infer_types();
    return controller;
}

double LoraController::apply(InferRequestPool::Lease& request, const std::vector<AppliedAdapter>& choices) const {
    const std::string tag = "lora:" + choices_tag(choices);
    if (tag == request.state_tag()) return 0.0;
    const auto start = Clock::now();
    std::map<std::string, ov::VariableState> states;
    for (auto& state : request->query_state()) states.emplace(state.get_name(), state);
    for (const Layer& layer : layers_) {
        // A graph cut from the prepared model (DeepCache's shallow UNet) holds the states of its own layers only.
        if (!states.count(layer.state_a)) continue;
        size_t rank = 0;
        for (const auto& c : choices)
            if (layer.pairs[c.index]) rank += layer.pairs[c.index]->rank;
        // A layer no chosen adapter touches gets one all-zero rank, which adds exactly zero. (Rank 0,
        // as the oracle uses, breaks the CPU plugin: after it, a real adapter on the same request
        // yields a black image, in the oracle too.)
        const size_t state_rank = std::max<size_t>(rank, 1);
        ov::Tensor a(ov::element::f32, ov::Shape{state_rank, layer.in});
        ov::Tensor alpha(ov::element::f32, ov::Shape{1, state_rank});
        ov::Tensor b(ov::element::f32, ov::Shape{layer.out, state_rank});
        if (rank == 0) {
            std::fill_n(a.data<float>(), a.get_size(), 0.0f);
            std::fill_n(alpha.data<float>(), 1, 0.0f);
            std::fill_n(b.data<float>(), b.get_size(), 0.0f);
        }
        size_t r0 = 0;
        for (const auto& c : choices) {
            const LoraPair* p = layer.pairs[c.index];
            if (!p) continue;
            // A stacks along rows, B along columns, alpha repeats per rank.
            std::memcpy(a.data<float>() + r0 * layer.in, p->a.data(), p->rank * layer.in * sizeof(float));
            for (size_t o = 0; o < layer.out; ++o)
                std::memcpy(b.data<float>() + o * rank + r0, p->b.data() + o * p->rank, p->rank * sizeof(float));
            std::fill_n(alpha.data<float>() + r0, p->rank, c.alpha);
            r0 += p->rank;
        }
        states.at(layer.state_a).set_state(a);
        states.at(layer.state_alpha).set_state(alpha);
        states.at(layer.state_b).set_state(b);
    }
    request.state_tag() = tag;
    return ms_since(start);
}

void LoraController::fuse(const std::shared_ptr<ov::Model>& model, const std::vector<std::shared_ptr<const LoraAdapter>>& adapters,
                          const std::vector<AppliedAdapter>& choices, const std::string& prefix, std::vector<std::string>& matched_keys) {
    for (const Match& match : match_layers(model, adapters, prefix, matched_keys)) {
        const auto& node = match.node;
        auto weight = ov::as_type_ptr<Constant>(node->input_value(1).get_node_shared_ptr());
        if (!weight || (weight->get_element_type() != ov::element::f32 && weight->get_element_type() != ov::element::f16))
            throw invalid_argument("LoRA fuse mode needs plain f32/f16 weights; layer " + node->get_friendly_name() +
                                   " is compressed (use the dynamic mode)");
        std::vector<float> w = weight->cast_vector<float>();
        const ov::Shape shape = weight->get_shape();
        for (const LoraPair* p : match.pairs)
            if (p && p->in * p->out != w.size())
                throw invalid_argument("LoRA layer shape does not fit the weights of " + node->get_friendly_name());
        const auto matmul = ov::as_type_ptr<MatMul>(node);
        const bool in_major = matmul && !matmul->get_transpose_b();  // W stored [in, out]
        for (const auto& c : choices) {
            const LoraPair* p = match.pairs[c.index];
            if (!p) continue;
            for (size_t o = 0; o < p->out; ++o)
                for (size_t i = 0; i < p->in; ++i) {
                    float delta = 0.0f;
                    for (size_t r = 0; r < p->rank; ++r) delta += p->b[o * p->rank + r] * p->a[r * p->in + i];
                    w[in_major ? i * p->out + o : o * p->in + i] += c.alpha * delta;
                }
        }
        auto fused = Constant::create(weight->get_element_type(), shape, w);
        fused->set_friendly_name(weight->get_friendly_name());
        node->input(1).replace_source_output(fused);
    }
}

}  // namespace ovd
