#pragma once
// A single OpenVINO IR model, compiled once and inferred from any thread: each call borrows an
// infer request from a pool, so concurrent calls share the compiled weights.
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <openvino/openvino.hpp>

#include "base/openvino_core.hpp"
#include "base/tensor_ops.hpp"

namespace ovd {

struct NamedTensor {
    std::string name;
    ov::Tensor tensor;  // owns its memory when returned from infer()
};

struct PortInfo {
    std::string name;
    std::string element_type;
    std::string shape;  // partial shape as OpenVINO prints it, e.g. [?,77]
};

class InferRequestPool {
public:
    explicit InferRequestPool(ov::CompiledModel compiled) : compiled_(std::move(compiled)) {}

    // RAII loan: the request returns to the pool when the lease is destroyed.
    // A request and a note of the state it holds (e.g. which LoRA adapters are set on it).
    struct Entry {
        ov::InferRequest request;
        std::string state_tag;
    };

    class Lease {
    public:
        Lease(InferRequestPool& pool, Entry entry) : pool_(&pool), entry_(std::move(entry)) {}
        Lease(Lease&& other) noexcept : pool_(other.pool_), entry_(std::move(other.entry_)) { other.pool_ = nullptr; }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Lease& operator=(Lease&&) = delete;
        ~Lease() {
            if (pool_) pool_->give_back(std::move(entry_));
        }
        ov::InferRequest& operator*() { return entry_.request; }
        ov::InferRequest* operator->() { return &entry_.request; }
        std::string& state_tag() { return entry_.state_tag; }

        // Inputs live in the request's own tensors; a caller's buffer is never bound with set_tensor.
        // Why: on the CPU plugin's f32 path (any CPU without native BF16, or INFERENCE_PRECISION_HINT=f32),
        // a fused LoRA node that reads a model input directly keeps reading the first buffer bound to it
        // after another buffer of the same shape replaces it, so later calls compute with stale or freed
        // memory (drifting, then black images; docs/lora.md). The request's own tensors never move under it.
        //
        // The request's tensor for `port`, resized to `shape`: fill it in place before infer().
        ov::Tensor input_buffer(const ov::Output<const ov::Node>& port, const ov::Shape& shape);
        ov::Tensor input_buffer(const std::string& name, const ov::Shape& shape);
        // Copies `value` into the request's tensor for the input.
        void write_input(const ov::Output<const ov::Node>& port, const ov::Tensor& value);
        void write_input(const std::string& name, const ov::Tensor& value);
        void write_input(size_t index, const ov::Tensor& value);

    private:
        InferRequestPool* pool_;
        Entry entry_;
    };

    Lease borrow();
    const ov::CompiledModel& compiled() const { return compiled_; }

private:
    void give_back(Entry entry);

    ov::CompiledModel compiled_;
    std::mutex mutex_;
    std::vector<Entry> idle_;
};

class IrModel {
public:
    // Changes a read model before it is compiled (static shapes, LoRA states, ...).
    using Rewrite = std::function<void(const std::shared_ptr<ov::Model>&)>;
    // Without a rewrite, compiles the file itself: with a CACHE_DIR, OpenVINO then keys the cache on the file and
    // imports the compiled blob without reading the weights (a warm SD 1.5 UNet load peaks ~850 MiB lower and
    // takes a third less time; docs/benchmarks.md). With one, reads the model, rewrites it and compiles that.
    static std::shared_ptr<IrModel> load(const std::string& xml_path, const std::string& device, const PropertyMap& properties,
                                         const Rewrite& rewrite = nullptr);
    // Compiles a model that was read (and perhaps rewritten, e.g. with pre/post-processing) by the caller.
    static std::shared_ptr<IrModel> compile(const std::shared_ptr<ov::Model>& model, const std::string& device,
                                            const PropertyMap& properties, const std::string& what);

    // A request for several consecutive inferences (a whole generation), returned to the pool afterwards.
    InferRequestPool::Lease borrow() { return pool_.borrow(); }
    const ov::CompiledModel& compiled() const { return pool_.compiled(); }

    // Runs one inference; inputs are matched by name, outputs are copied out of the request.
    std::vector<NamedTensor> infer(const std::vector<NamedTensor>& inputs);

    std::vector<PortInfo> inputs() const;
    std::vector<PortInfo> outputs() const;
    const std::string& device() const { return device_; }
    double compile_ms() const { return compile_ms_; }

private:
    IrModel(ov::CompiledModel compiled, std::string device, double compile_ms)
        : pool_(std::move(compiled)), device_(std::move(device)), compile_ms_(compile_ms) {}

    InferRequestPool pool_;
    std::string device_;
    double compile_ms_;
};

// Reads an IR, wrapping OpenVINO's exceptions with the file name and a stable error code.
std::shared_ptr<ov::Model> read_ir(const std::string& xml_path);

// Static shapes before compiling: `shape_of(input name, current shape)` gives an input its new shape,
// or nothing to leave it. A shape the model cannot take is an invalid_argument naming `what`.
using InputShaper = std::function<std::optional<ov::PartialShape>(const std::string& name, const ov::PartialShape& shape)>;
void reshape_inputs(const std::shared_ptr<ov::Model>& model, const InputShaper& shape_of, const std::string& what);

}  // namespace ovd
