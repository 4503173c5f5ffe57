#!/usr/bin/env python3
"""Generates the small ONNX cases of the importer tests into testdata/import/.

Each case is a hand-built graph (onnx.helper) exercising one part of the importer: constant
folding of shape subgraphs, legacy opsets, auto padding, external data, and failure modes.
Valid cases pass onnx.checker; those meant to run also get `<name>.input.npy` and
`<name>.ort_out.npy` (onnxruntime's output), so the oracle test can compare clio's interpreter.

    python3 testdata/gen/gen_import_cases.py          # from the repository root
    python3 testdata/gen/gen_import_cases.py --tf-python /tmp/tfenv/bin/python   # + .tflite cases

Needs onnx and numpy; onnxruntime for the expected outputs (skipped with a note when missing).
The two tiny `.tflite` files come from TensorFlow's converter (tensorflow-cpu 2.21.0, run by
the interpreter given with --tf-python; without it they are left as they are):
`tflite_residual.tflite` (conv + residual add + mean; tract-tflite 0.23.9 loads it) and
`tflite_dense.tflite` (two Dense layers; tract-tflite 0.23.9 panics on it).
Deterministic: fixed seeds, no timestamps.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "import")
rng = np.random.default_rng(20240605)


def w(name, *shape, scale=0.5):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def pos(name, *shape):
    return numpy_helper.from_array(rng.uniform(0.5, 1.5, shape).astype(np.float32), name)


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def f32(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.float32), name)


def model(name, nodes, inputs, outputs, inits, opset=13, check=True, producer="clio gen_import_cases"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer,
                          producer_version="1")
    m.ir_version = 7
    if check:
        onnx.checker.check_model(m)
    return m


def save(m, name, input_shape=None, location=None):
    path = os.path.join(OUT, name + ".onnx")
    if location is not None:
        # onnx appends to an existing data file: start afresh.
        if os.path.exists(os.path.join(OUT, location)):
            os.remove(os.path.join(OUT, location))
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                        size_threshold=0)
    else:
        onnx.save_model(m, path)
    if input_shape is None:
        return
    x = np.random.default_rng(7).standard_normal(input_shape).astype(np.float32)
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime missing: no expected output for", name, file=sys.stderr)
        return
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.save(os.path.join(OUT, name + ".ort_out.npy"), y.astype(np.float32))


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def shape_subgraph():
    """torch's x.view(x.size(0), -1) and friends: a Reshape target computed from Shape,
    Gather, Slice, Cast, Mul, Div, Unsqueeze, Concat, ConstantOfShape, Range, Equal, Where,
    Squeeze, with a symbolic batch dimension."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1.w", "c1.b"], ["c1"], name="conv1x1"),
        n("Shape", ["c1"], ["shp"], name="shape"),
        n("Gather", ["shp", "zero"], ["batch"], name="gather_batch", axis=0),
        n("Slice", ["shp", "two", "four"], ["hw"], name="slice_hw"),
        n("Cast", ["hw"], ["hw_f"], name="to_float", to=TensorProto.FLOAT),
        n("Cast", ["hw_f"], ["hw_i"], name="to_int", to=TensorProto.INT64),
        n("Gather", ["hw_i", "zero"], ["h"], name="gather_h", axis=0),
        n("Gather", ["hw_i", "one"], ["w_"], name="gather_w", axis=0),
        n("Mul", ["h", "w_"], ["hw_prod"], name="mul_hw"),
        n("Gather", ["shp", "one"], ["ch"], name="gather_c", axis=0),
        n("Mul", ["ch", "hw_prod"], ["chw"], name="mul_chw"),
        n("Div", ["chw", "one_s"], ["chw2"], name="div_one"),
        n("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsq_batch"),
        n("Unsqueeze", ["chw2", "axes0"], ["chw1"], name="unsq_chw"),
        n("Concat", ["batch1", "chw1"], ["target0"], name="concat_target", axis=0),
        # Where(Equal(target, 0), ones, target) is the identity here (no zero entries).
        n("ConstantOfShape", ["two_v"], ["ones"], name="ones",
          value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
        n("Range", ["zero", "two_s", "one_s"], ["rng"], name="range"),
        n("Equal", ["target0", "rng"], ["eq"], name="equal"),
        n("Where", ["eq", "ones", "target0"], ["target"], name="where"),
        n("Reshape", ["c1", "target"], ["flat"], name="view"),
        n("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1),
    ]
    inits = [w("c1.w", 4, 3, 1, 1), w("c1.b", 4), i64("zero", 0), i64("one", 1), i64("two", [2]), i64("four", [4]),
             i64("one_s", 1), i64("axes0", [0]), i64("two_v", [2]), i64("two_s", 2), w("fc.w", 5, 64), w("fc.b", 5)]
    m = model("shape_subgraph", nodes, [vi("x", ["N", 3, 4, 4])], [vi("y", ["N", 5])], inits)
    save(m, "shape_subgraph", (1, 3, 4, 4))


def legacy_opset9():
    """Opset-9 forms: Clip/Pad/Squeeze/Unsqueeze/Slice with attributes, Softmax with the
    flattening axis that coincides with the last axis, BatchNormalization."""
    n = helper.make_node
    nodes = [
        n("Pad", ["x"], ["p"], name="pad", pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="constant", value=0.5),
        n("Conv", ["p", "c.w"], ["c"], name="conv", kernel_shape=[3, 3]),
        n("BatchNormalization", ["c", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn", epsilon=1e-3),
        n("Clip", ["bn"], ["r6"], name="relu6", min=0.0, max=6.0),
        n("Slice", ["r6"], ["sl"], name="first_channels", starts=[0], ends=[4], axes=[1]),
        n("GlobalAveragePool", ["sl"], ["gap"], name="gap"),
        n("Squeeze", ["gap"], ["sq"], name="squeeze", axes=[2, 3]),
        n("Unsqueeze", ["sq"], ["us"], name="unsqueeze", axes=[2]),
        n("Flatten", ["us"], ["fl"], name="flatten", axis=1),
        n("Gemm", ["fl", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
        n("Softmax", ["logits"], ["y"], name="softmax", axis=1),
    ]
    inits = [w("c.w", 6, 3, 3, 3), pos("bn.s", 6), w("bn.b", 6), w("bn.m", 6, scale=0.1), pos("bn.v", 6),
             w("fc.w", 5, 4), w("fc.b", 5)]
    m = model("legacy_opset9", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 5])], inits, opset=9)
    save(m, "legacy_opset9", (1, 3, 8, 8))


def window_ops():
    """Conv auto_pad SAME_UPPER/SAME_LOWER/VALID (strided, dilated, grouped), pools with
    auto_pad, ceil_mode and count_include_pad, Pad (opset 11 inputs, reflect), LeakyRelu,
    PRelu, HardSwish, HardSigmoid, Sigmoid, Identity, Dropout, channel Slice, Concat,
    ReduceMean over H, W, MatMul, Sub/Div with constants."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "a.w", "a.b"], ["a"], name="same_upper", auto_pad="SAME_UPPER", strides=[2, 2]),
        n("LeakyRelu", ["a"], ["a1"], name="leaky", alpha=0.1),
        n("Conv", ["a1", "b.w"], ["b"], name="same_lower_dw", auto_pad="SAME_LOWER", group=8),
        n("PRelu", ["b", "slope"], ["b1"], name="prelu"),
        n("Conv", ["b1", "c.w"], ["c"], name="valid_dilated", auto_pad="VALID", dilations=[2, 2]),
        n("HardSwish", ["c"], ["c1"], name="hswish"),
        n("Pad", ["c1", "pads", "padv"], ["p"], name="pad_reflect", mode="reflect"),
        n("MaxPool", ["p"], ["mp"], name="maxpool_same", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        n("AveragePool", ["p"], ["ap"], name="avgpool_ceil", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1, count_include_pad=1),
        n("Identity", ["mp"], ["mp1"], name="identity"),
        n("Dropout", ["ap"], ["ap1"], name="dropout"),
        n("Concat", ["mp1", "ap1"], ["cat"], name="concat", axis=1),
        n("Slice", ["cat", "s_start", "s_end", "s_axes"], ["sl"], name="channel_slice"),
        n("HardSigmoid", ["sl"], ["hs"], name="hsig", alpha=0.25, beta=0.4),
        n("Sub", ["hs", "mean"], ["hs1"], name="sub_mean"),
        n("Div", ["hs1", "std"], ["hs2"], name="div_std"),
        n("Sigmoid", ["hs2"], ["sg"], name="sigmoid"),
        n("ReduceMean", ["sg"], ["rm"], name="reduce_mean", axes=[2, 3], keepdims=0),
        n("MatMul", ["rm", "fc.w"], ["y"], name="matmul"),
    ]
    inits = [w("a.w", 8, 3, 3, 3), w("a.b", 8), w("b.w", 8, 1, 3, 3), f32("slope", rng.uniform(0, 0.5, (8, 1, 1))),
             w("c.w", 8, 8, 3, 3), i64("pads", [0, 0, 1, 2, 0, 0, 2, 1]), f32("padv", 0.0),
             i64("s_start", [2]), i64("s_end", [12]), i64("s_axes", [1]), f32("mean", 0.5), f32("std", 0.25),
             w("fc.w", 10, 4)]
    m = model("window_ops", nodes, [vi("x", [1, 3, 16, 16])], [vi("y", [1, 4])], inits, opset=14)
    save(m, "window_ops", (1, 3, 16, 16))


def external_data():
    """A conv + gemm whose float initializers live in external_data.bin."""
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "conv.w", "conv.b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        n("Relu", ["c"], ["r"], name="relu"),
        n("Flatten", ["r"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1),
    ]
    inits = [w("conv.w", 4, 2, 3, 3), w("conv.b", 4), w("fc.w", 3, 64), w("fc.b", 3)]
    m = model("external_data", nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 3])], inits)
    save(m, "external_data", (1, 2, 4, 4), location="external_data.bin")


def external_tampered():
    """External data problems: a missing file, a path escaping the directory, an offset past
    the end of the file, and a declared 1e12-element tensor."""
    def ext(name, dims, location, offset=None, length=None):
        t = TensorProto()
        t.name = name
        t.data_type = TensorProto.FLOAT
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, str(v)
        return t

    def one(name, t):
        n = helper.make_node("Mul", ["x", t.name], ["y"], name="mul")
        m = model(name, [n], [vi("x", [1, 4])], [vi("y", None)], [t], check=False)
        save(m, name)

    one("external_missing", ext("scale", [4], "weights_not_committed.bin"))
    one("external_escape", ext("scale", [4], "../external_data.bin"))
    one("external_beyond_end", ext("scale", [4], "external_data.bin", offset=1 << 20, length=16))
    one("external_huge", ext("scale", [1000000, 1000000], "weights_not_committed.bin"))


def failures():
    n = helper.make_node
    # An LSTM the importer does not support.
    lstm = n("LSTM", ["x", "W", "R"], ["", "h"], name="lstm_1", hidden_size=4)
    m = model("unsupported_lstm", [lstm], [vi("x", [2, 1, 3])], [vi("h", None)],
              [w("W", 1, 16, 3), w("R", 1, 16, 4)], check=False)
    save(m, "unsupported_lstm")
    # Opset 11 Softmax over flattened [3, 4] (not a single-axis softmax).
    sm = n("Softmax", ["x"], ["y"], name="softmax_2d", axis=1)
    save(model("softmax_flatten", [sm], [vi("x", [1, 3, 4])], [vi("y", [1, 3, 4])], [], opset=11), "softmax_flatten")
    # Training-mode BatchNormalization (opset 15).
    bn = n("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], name="bn_train", training_mode=1)
    m = model("bn_training", [bn], [vi("x", [1, 2, 3, 3])], [vi("y", None), vi("rm", None), vi("rv", None)],
              [pos("s", 2), w("b", 2), w("m", 2), pos("v", 2)], opset=15, check=False)
    save(m, "bn_training")
    # Conv with an unknown auto_pad value.
    cv = n("Conv", ["x", "w"], ["y"], name="conv_bad_pad", auto_pad="SAME_MIDDLE")
    save(model("bad_auto_pad", [cv], [vi("x", [1, 1, 4, 4])], [vi("y", None)], [w("w", 1, 1, 3, 3)], check=False),
         "bad_auto_pad")
    # An int64 initializer used as data of a float op.
    mul = n("Mul", ["x", "k"], ["y"], name="mul_int")
    save(model("int_data", [mul], [vi("x", [1, 2])], [vi("y", None)], [i64("k", [1, 2])], check=False), "int_data")
    # A float16 input.
    f16 = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 2])
    rl = n("Relu", ["x"], ["y"], name="relu")
    save(model("f16_input", [rl], [f16], [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 2])], []),
         "f16_input")
    # Two inputs, one with symbolic dims, one fixed.
    add = n("Add", ["a", "b"], ["y"], name="add")
    save(model("two_inputs", [add], [vi("a", ["N", 3]), vi("b", [1, 3])], [vi("y", ["N", 3])], []), "two_inputs")


TFLITE_SCRIPT = r"""
import sys, numpy as np, tensorflow as tf
out = sys.argv[1]
tf.keras.utils.set_random_seed(0)
L = tf.keras.layers
def save(model, name):
    open(f"{out}/{name}.tflite", "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
inp = L.Input((8, 8, 4))
y = L.Conv2D(4, 3, padding="same")(inp)
y = L.Add()([y, inp])
y = L.GlobalAveragePooling2D()(y)
save(tf.keras.Model(inp, y), "tflite_residual")
save(tf.keras.Sequential([L.Input((8,)), L.Dense(4, activation="relu"), L.Dense(2)]), "tflite_dense")
"""


def tflite_cases(tf_python):
    import subprocess
    subprocess.run([tf_python, "-c", TFLITE_SCRIPT, OUT], check=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    if "--tf-python" in sys.argv:
        tflite_cases(sys.argv[sys.argv.index("--tf-python") + 1])
    shape_subgraph()
    legacy_opset9()
    window_ops()
    external_data()
    external_tampered()
    failures()


if __name__ == "__main__":
    main()
