#include "models/image_processor.hpp"

#include <mutex>

#include <openvino/core/preprocess/pre_post_process.hpp>
#include <openvino/op/interpolate.hpp>
#include <openvino/opsets/opset13.hpp>

#include "base/errors.hpp"
#include "base/ir_model.hpp"
#include "base/tensor_ops.hpp"

namespace ovd {
namespace {

using namespace ov::opset13;
using Mode = ov::op::v11::Interpolate::InterpolateMode;

std::shared_ptr<ov::Model> make_resizer(ov::element::Type type, Mode mode, std::vector<int64_t> axes) {
    auto image = std::make_shared<Parameter>(type, ov::PartialShape::dynamic(4));
    auto size = std::make_shared<Parameter>(ov::element::i64, ov::Shape{2});
    ov::op::v11::Interpolate::InterpolateAttrs attrs;
    attrs.mode = mode;
    attrs.shape_calculation_mode = ov::op::v11::Interpolate::ShapeCalcMode::SIZES;
    attrs.pads_begin = {0, 0, 0, 0};
    attrs.pads_end = {0, 0, 0, 0};
    attrs.nearest_mode = ov::op::v11::Interpolate::NearestMode::FLOOR;
    attrs.coordinate_transformation_mode = mode == Mode::NEAREST ? ov::op::v11::Interpolate::CoordinateTransformMode::ASYMMETRIC
                                                                 : ov::op::v11::Interpolate::CoordinateTransformMode::PYTORCH_HALF_PIXEL;
    auto axes_const = Constant::create(ov::element::i64, ov::Shape{2}, axes);
    auto resize = std::make_shared<ov::op::v11::Interpolate>(image, size, axes_const, attrs);
    return std::make_shared<ov::Model>(ov::OutputVector{resize}, ov::ParameterVector{image, size});
}

std::shared_ptr<ov::Model> make_normalizer() {
    auto input = std::make_shared<Parameter>(ov::element::f32, ov::PartialShape::dynamic(4));
    auto model = std::make_shared<ov::Model>(ov::OutputVector{input}, ov::ParameterVector{input});
    ov::preprocess::PrePostProcessor ppp(model);
    ppp.input().tensor().set_layout("NHWC").set_element_type(ov::element::u8).set_color_format(ov::preprocess::ColorFormat::RGB);
    ppp.input().model().set_layout("NCHW");
    ppp.input().preprocess().convert_layout().convert_element_type(ov::element::f32).scale(127.5f).mean(1.0f);
    return ppp.build();
}

std::shared_ptr<ov::Model> make_binarizer(bool rgb_source) {
    auto input = std::make_shared<Parameter>(ov::element::f32, ov::PartialShape::dynamic(4));
    auto model = std::make_shared<ov::Model>(ov::OutputVector{input}, ov::ParameterVector{input});
    ov::preprocess::PrePostProcessor ppp(model);
    ppp.input()
        .tensor()
        .set_layout("NHWC")
        .set_element_type(ov::element::u8)
        .set_color_format(rgb_source ? ov::preprocess::ColorFormat::RGB : ov::preprocess::ColorFormat::GRAY);
    ppp.input().model().set_layout("NCHW");
    auto& steps = ppp.input().preprocess();
    steps.convert_element_type(ov::element::f32);
    if (rgb_source) steps.convert_color(ov::preprocess::ColorFormat::GRAY);
    steps.scale(255.0f);
    steps.custom([](const ov::Output<ov::Node>& value) -> ov::Output<ov::Node> {
        auto is_set = std::make_shared<GreaterEqual>(value, Constant::create(ov::element::f32, ov::Shape{}, {0.5f}));
        return std::make_shared<Select>(is_set, Constant::create(ov::element::f32, ov::Shape{}, {1.0f}),
                                        Constant::create(ov::element::f32, ov::Shape{}, {0.0f}));
    });
    return ppp.build();
}

struct Processors {
    std::shared_ptr<IrModel> resize_u8, resize_nearest, normalize, binarize_rgb, binarize_gray;
};

const Processors& processors() {
    static std::once_flag once;
    static Processors p;
    std::call_once(once, [] {
        p.resize_u8 = IrModel::compile(make_resizer(ov::element::u8, Mode::BICUBIC_PILLOW, {1, 2}), "CPU", {}, "image resizer");
        p.resize_nearest = IrModel::compile(make_resizer(ov::element::f32, Mode::NEAREST, {2, 3}), "CPU", {}, "mask resizer");
        p.normalize = IrModel::compile(make_normalizer(), "CPU", {}, "image normalizer");
        p.binarize_rgb = IrModel::compile(make_binarizer(true), "CPU", {}, "mask binarizer");
        p.binarize_gray = IrModel::compile(make_binarizer(false), "CPU", {}, "mask binarizer");
    });
    return p;
}

ov::Tensor run(IrModel& model, const std::vector<ov::Tensor>& inputs) {
    auto request = model.borrow();
    for (size_t i = 0; i < inputs.size(); ++i) request.write_input(i, inputs[i]);
    request->infer();
    return copy_tensor(request->get_output_tensor());
}

ov::Tensor size_tensor(size_t height, size_t width) {
    ov::Tensor size(ov::element::i64, ov::Shape{2});
    size.data<int64_t>()[0] = static_cast<int64_t>(height);
    size.data<int64_t>()[1] = static_cast<int64_t>(width);
    return size;
}

}  // namespace

ov::Tensor resize_image_u8(const ov::Tensor& image, size_t height, size_t width) {
    return run(*processors().resize_u8, {image, size_tensor(height, width)});
}

ov::Tensor normalize_image(const ov::Tensor& image_u8) { return run(*processors().normalize, {image_u8}); }

ov::Tensor binarize_mask(const ov::Tensor& mask_u8) {
    const size_t channels = mask_u8.get_shape().at(3);
    if (channels != 1 && channels != 3) throw invalid_param("mask", "a mask must have 1 or 3 channels");
    return run(channels == 3 ? *processors().binarize_rgb : *processors().binarize_gray, {mask_u8});
}

ov::Tensor downscale_mask(const ov::Tensor& mask, size_t height, size_t width) {
    return run(*processors().resize_nearest, {mask, size_tensor(height, width)});
}

}  // namespace ovd
