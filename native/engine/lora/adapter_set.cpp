#include "lora/adapter_set.hpp"

#include <cmath>
#include <set>

#include "base/errors.hpp"

namespace ovd {

AdapterSet::AdapterSet(const std::vector<AdapterSpec>& specs, LoraMode mode, LoraNaming naming) : specs_(specs), mode_(mode) {
    std::set<std::string> names;
    for (const AdapterSpec& spec : specs_) {
        if (spec.name.empty()) throw invalid_argument("every adapter needs a name");
        if (!names.insert(spec.name).second) throw invalid_argument("adapter name '" + spec.name + "' is registered twice");
        adapters_.push_back(LoraAdapter::load(spec.path, naming));
    }
}

std::shared_ptr<LoraController> AdapterSet::prepare(const std::shared_ptr<ov::Model>& model, const std::string& prefix) {
    if (adapters_.empty()) return nullptr;
    if (mode_ == LoraMode::Fuse) {
        std::vector<AppliedAdapter> all;
        for (size_t i = 0; i < specs_.size(); ++i) all.push_back({i, specs_[i].alpha});
        LoraController::fuse(model, adapters_, all, prefix, matched_keys_);
        return nullptr;
    }
    return LoraController::attach(model, adapters_, prefix, matched_keys_);
}

std::vector<AppliedAdapter> AdapterSet::choose(const std::vector<AdapterChoice>& requests) const {
    std::vector<AppliedAdapter> choices;
    std::set<size_t> seen;
    for (const AdapterChoice& request : requests) {
        size_t index = specs_.size();
        for (size_t i = 0; i < specs_.size(); ++i)
            if (specs_[i].name == request.name) index = i;
        if (index == specs_.size()) {
            std::string known;
            for (const auto& s : specs_) known += (known.empty() ? "" : ", ") + s.name;
            throw invalid_param("adapters", "unknown adapter '" + request.name + "'" +
                                                (known.empty() ? " (no adapters are registered)" : " (registered: " + known + ")"));
        }
        if (!seen.insert(index).second) throw invalid_param("adapters", "adapter '" + request.name + "' is selected twice");
        const float alpha = request.alpha.value_or(specs_[index].alpha);
        if (!std::isfinite(alpha)) throw invalid_param("adapters", "adapter alpha must be a finite number");
        choices.push_back({index, alpha});
    }
    if (mode_ == LoraMode::Fuse && !choices.empty()) {
        // Fused adapters are part of the weights: a call can only restate them.
        bool same = choices.size() == specs_.size();
        for (const auto& c : choices) same = same && c.alpha == specs_[c.index].alpha;
        if (!same)
            throw invalid_argument(
                "the adapters are fused into this model at load; load it in dynamic mode to choose adapters or alphas per call");
        choices.clear();
    }
    return choices;
}

std::vector<AdapterReport> AdapterSet::report() const {
    std::vector<AdapterReport> reports;
    for (size_t i = 0; i < adapters_.size(); ++i) {
        AdapterReport r;
        r.name = specs_[i].name;
        std::set<std::string> matched;
        const std::string tag = std::to_string(i) + ":";
        for (const auto& key : matched_keys_)
            if (key.compare(0, tag.size(), tag) == 0) matched.insert(key.substr(tag.size()));
        r.matched = matched.size();
        for (const auto& [key, pair] : adapters_[i]->pairs())
            if (!matched.count(key)) r.unmatched.push_back(key);
        reports.push_back(std::move(r));
    }
    return reports;
}

}  // namespace ovd
