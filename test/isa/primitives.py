"""Prints, as JSON, what the CPU plugin executes in this process: its default inference precision and the primitive
(kernel) names of a small compiled model (MatMul, Convolution, Softmax, Add). test/isa/run.js reads it to check
that a lower-ISA run really runs lower-ISA kernels, e.g. "jit_avx2_f32" and no "avx512" anywhere."""
import json

import numpy as np
import openvino as ov
import openvino.opset13 as ops

core = ov.Core()
x = ops.parameter([1, 8, 16, 16], np.float32, name="x")
conv = ops.convolution(x, ops.constant(np.ones([8, 8, 3, 3], np.float32)), [1, 1], [1, 1], [1, 1], [1, 1])
flat = ops.reshape(conv, ops.constant(np.array([1, 8, 256], np.int64)), False)
mm = ops.matmul(flat, ops.constant(np.ones([256, 32], np.float32)), False, False)
out = ops.softmax(ops.add(mm, ops.constant(np.ones([32], np.float32))), -1)
compiled = core.compile_model(ov.Model([out], [x]), "CPU")
primitives = sorted({n.get_rt_info()["primitiveType"].astype(str) for n in compiled.get_runtime_model().get_ordered_ops()})
print(json.dumps({
    "precision": str(core.get_property("CPU", "INFERENCE_PRECISION_HINT")),
    "primitives": primitives,
}))
