#include "base/ir_model.hpp"

#include <chrono>
#include <filesystem>
#include <sstream>

#include "base/allocator_tuning.hpp"
#include "base/errors.hpp"

namespace ovd {

InferRequestPool::Lease InferRequestPool::borrow() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!idle_.empty()) {
            Entry entry = std::move(idle_.back());
            idle_.pop_back();
            return Lease(*this, std::move(entry));
        }
    }
    return Lease(*this, Entry{compiled_.create_infer_request(), {}});
}

ov::Tensor InferRequestPool::Lease::input_buffer(const ov::Output<const ov::Node>& port, const ov::Shape& shape) {
    ov::Tensor own = entry_.request.get_tensor(port);
    if (own.get_shape() != shape) own.set_shape(shape);
    return own;
}

ov::Tensor InferRequestPool::Lease::input_buffer(const std::string& name, const ov::Shape& shape) {
    return input_buffer(pool_->compiled().input(name), shape);
}

void InferRequestPool::Lease::write_input(const ov::Output<const ov::Node>& port, const ov::Tensor& value) {
    if (port.get_element_type() != value.get_element_type())
        throw EngineError(ErrorCode::Runtime, "input '" + port.get_any_name() + "' expects " + port.get_element_type().get_type_name() +
                                                  ", got " + value.get_element_type().get_type_name());
    ov::Tensor own = input_buffer(port, value.get_shape());
    value.copy_to(own);
}

void InferRequestPool::Lease::write_input(const std::string& name, const ov::Tensor& value) {
    write_input(pool_->compiled().input(name), value);
}

void InferRequestPool::Lease::write_input(size_t index, const ov::Tensor& value) { write_input(pool_->compiled().input(index), value); }

void InferRequestPool::give_back(Entry entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(entry));
}

std::shared_ptr<ov::Model> read_ir(const std::string& xml_path) {
    if (!std::filesystem::exists(xml_path)) throw EngineError(ErrorCode::ModelNotFound, "model file not found: " + xml_path);
    try {
        return shared_core().read_model(xml_path);
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::UnsupportedModel, "cannot read model " + xml_path + ": " + e.what());
    }
}

namespace {

// `source`: an ov::Model or an IR file path. Compiles under the allocator's compile setting.
template <typename Source>
ov::CompiledModel compile_source(const Source& source, const std::string& device, const PropertyMap& properties, const std::string& what) {
    CompileAllocationScope allocation_scope;
    try {
        return shared_core().compile_model(source, device, to_any_map(properties));
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, "cannot compile " + what + " for device '" + device + "': " + e.what());
    }
}

}  // namespace

void reshape_inputs(const std::shared_ptr<ov::Model>& model, const InputShaper& shape_of, const std::string& what) {
    std::map<ov::Output<ov::Node>, ov::PartialShape> shapes;
    std::string described;
    for (const auto& input : model->inputs()) {
        const std::string name = input.get_names().empty() ? std::string() : input.get_any_name();
        if (auto shape = shape_of(name, input.get_partial_shape())) {
            shapes[input] = *shape;
            described += (described.empty() ? "" : ", ") + name + " " + shape->to_string();
        }
    }
    if (shapes.empty()) return;
    try {
        model->reshape(shapes);
    } catch (const std::exception& e) {
        throw invalid_argument("cannot give " + what + " the static shapes " + described + ": " + e.what());
    }
}

std::shared_ptr<IrModel> IrModel::load(const std::string& xml_path, const std::string& device, const PropertyMap& properties,
                                       const Rewrite& rewrite) {
    if (rewrite) {
        std::shared_ptr<ov::Model> model = read_ir(xml_path);
        rewrite(model);
        return compile(model, device, properties, xml_path);
    }
    if (!std::filesystem::exists(xml_path)) throw EngineError(ErrorCode::ModelNotFound, "model file not found: " + xml_path);
    const auto start = Clock::now();
    ov::CompiledModel compiled;
    try {
        compiled = compile_source(xml_path, device, properties, xml_path);
    } catch (const EngineError&) {
        read_ir(xml_path);  // an unreadable IR is reported as such (ERR_UNSUPPORTED_MODEL)
        throw;
    }
    return std::shared_ptr<IrModel>(new IrModel(std::move(compiled), device, ms_since(start)));
}

std::shared_ptr<IrModel> IrModel::compile(const std::shared_ptr<ov::Model>& model, const std::string& device, const PropertyMap& properties,
                                          const std::string& what) {
    const auto start = Clock::now();
    auto compiled = compile_source(model, device, properties, what);
    return std::shared_ptr<IrModel>(new IrModel(std::move(compiled), device, ms_since(start)));
}

std::vector<NamedTensor> IrModel::infer(const std::vector<NamedTensor>& inputs) {
    auto request = pool_.borrow();
    const auto& compiled = pool_.compiled();
    for (const auto& input : inputs) {
        ov::Output<const ov::Node> port;
        try {
            port = compiled.input(input.name);
        } catch (const std::exception&) {
            throw invalid_argument("the model has no input named '" + input.name + "'");
        }
        if (port.get_element_type() != input.tensor.get_element_type())
            throw invalid_argument("input '" + input.name + "' expects " + port.get_element_type().get_type_name() + ", got " +
                                   input.tensor.get_element_type().get_type_name());
        if (!port.get_partial_shape().compatible(input.tensor.get_shape()))
            throw invalid_argument("input '" + input.name + "' expects shape " + port.get_partial_shape().to_string() + ", got " +
                                   input.tensor.get_shape().to_string());
        request.write_input(port, input.tensor);
    }
    try {
        request->infer();
    } catch (const std::exception& e) {
        throw EngineError(ErrorCode::Runtime, std::string("inference failed: ") + e.what());
    }
    std::vector<NamedTensor> outputs;
    for (const auto& port : compiled.outputs()) {
        const auto& names = port.get_names();
        outputs.push_back({names.empty() ? std::string() : port.get_any_name(), copy_tensor(request->get_tensor(port))});
    }
    return outputs;
}

namespace {
std::vector<PortInfo> describe(const std::vector<ov::Output<const ov::Node>>& ports) {
    std::vector<PortInfo> infos;
    for (const auto& port : ports)
        infos.push_back({port.get_names().empty() ? std::string() : port.get_any_name(), port.get_element_type().get_type_name(),
                         port.get_partial_shape().to_string()});
    return infos;
}
}  // namespace

std::vector<PortInfo> IrModel::inputs() const { return describe(pool_.compiled().inputs()); }
std::vector<PortInfo> IrModel::outputs() const { return describe(pool_.compiled().outputs()); }

}  // namespace ovd
