#pragma once
// A diffusers-style model folder as optimum-intel exports it: model_index.json names the pipeline
// class and its components, each in a sub-folder with openvino_model.xml and config.json.
#include <filesystem>
#include <string>

#include "base/json.hpp"

namespace ovd {

class ModelFolder {
public:
    static ModelFolder open(const std::filesystem::path& root);

    const std::filesystem::path& root() const { return root_; }
    const std::string& class_name() const { return class_name_; }
    const Json& index() const { return index_; }

    // The class declared for a component (data[name][1]); empty when absent or null.
    std::string component_class(const std::string& component) const;
    // Throws ERR_UNSUPPORTED_MODEL when the component's class is not the expected one.
    void expect_component(const std::string& component, const std::string& expected_class) const;

    // A file inside the folder; throws ERR_MODEL_NOT_FOUND naming it when it does not exist.
    std::filesystem::path file(const std::string& relative) const;
    bool exists(const std::string& relative) const { return std::filesystem::exists(root_ / relative); }
    // Reads a JSON file of the folder (e.g. "unet/config.json"), with errors that name it.
    Json json(const std::string& relative) const;

private:
    std::filesystem::path root_;
    Json index_;
    std::string class_name_;
};

}  // namespace ovd
