#include "base/model_folder.hpp"

#include "base/errors.hpp"

namespace ovd {

ModelFolder ModelFolder::open(const std::filesystem::path& root) {
    ModelFolder folder;
    folder.root_ = root;
    if (!std::filesystem::is_directory(root)) throw EngineError(ErrorCode::ModelNotFound, "model folder not found: " + root.string());
    folder.index_ = folder.json("model_index.json");
    const Json* name = folder.index_.find("_class_name");
    if (!name || !name->is_string())
        throw EngineError(ErrorCode::UnsupportedModel, (root / "model_index.json").string() + " has no _class_name");
    folder.class_name_ = name->as_string();
    return folder;
}

std::string ModelFolder::component_class(const std::string& component) const {
    const Json* entry = index_.find(component);
    if (!entry || !entry->is_array() || entry->size() < 2 || !entry->at(1).is_string()) return {};
    return entry->at(1).as_string();
}

void ModelFolder::expect_component(const std::string& component, const std::string& expected_class) const {
    const std::string actual = component_class(component);
    if (actual != expected_class)
        throw EngineError(ErrorCode::UnsupportedModel, (root_ / "model_index.json").string() + ": component '" + component + "' is '" +
                                                           (actual.empty() ? std::string("missing") : actual) + "', expected '" +
                                                           expected_class + "'");
}

std::filesystem::path ModelFolder::file(const std::string& relative) const {
    std::filesystem::path path = root_ / relative;
    if (!std::filesystem::exists(path)) throw EngineError(ErrorCode::ModelNotFound, "model file not found: " + path.string());
    return path;
}

Json ModelFolder::json(const std::string& relative) const {
    const std::filesystem::path path = file(relative);
    try {
        return Json::parse_file(path.string());
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::UnsupportedModel, e.what());
    }
}

}  // namespace ovd
