#!/usr/bin/env python3
"""Runs one-op int8 cases through tflite-micro's reference kernels (the oracle of
tests/quant_tflm_oracle.rs).

Usage: run_cases.py CASES.json OUT.json

CASES.json is a list of cases written by the Rust test (tensors in TFLite layout: NHWC
activations, OHWI conv filters, [1, KH, KW, C] depthwise filters, [N, K] fully-connected
weights). For each case this script builds a one-operator .tflite flatbuffer with the model
editor shipped in the `tflite-micro` wheel, runs it with `tflite_micro.runtime.Interpreter`
and writes the int8 output (flattened, TFLite layout) to OUT.json as a list of lists (or an
error string per failed case).

Exit status 3 with a message when tflite-micro is not importable.
"""
import json
import sys

try:
    import numpy as np
    from tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl
except Exception as e:  # noqa: BLE001
    print(f"tflite-micro is not importable ({e}); run `pip install tflite-micro numpy flatbuffers pyyaml`",
          file=sys.stderr)
    sys.exit(3)

PADDING = {"SAME": tfl.Padding.SAME, "VALID": tfl.Padding.VALID}
NONE = tfl.ActivationFunctionType.NONE


def qt(shape, dtype, scales, zps, axis=None, data=None, name=None):
    q = me.Quantization(scales=list(map(float, scales)), zero_points=list(map(int, zps)), axis=axis)
    kw = dict(shape=tuple(shape), dtype=dtype, quantization=q, name=name)
    if data is not None:
        kw["data"] = data
    return me.Tensor(**kw)


def act(spec, name):
    return qt(spec["shape"], tfl.TensorType.INT8, [spec["scale"]], [spec["zp"]], name=name)


def const(spec, name, dtype, npdtype):
    arr = np.array(spec["data"], dtype=npdtype).reshape(spec["shape"])
    axis = spec.get("axis")
    return qt(spec["shape"], dtype, spec["scales"], spec["zps"], axis=axis, data=arr, name=name)


def build(case):
    op = case["op"]
    x = act(case["input"], "x")
    y = act(case["output"], "y")
    inputs = [x]
    tensors = [x]
    opts_type, opts = None, None
    if op in ("conv", "depthwise"):
        w = const(case["filter"], "w", tfl.TensorType.INT8, np.int8)
        b = const(case["bias"], "b", tfl.TensorType.INT32, np.int32)
        inputs += [w, b]
        tensors += [w, b]
        if op == "conv":
            code = tfl.BuiltinOperator.CONV_2D
            opts = tfl.Conv2DOptionsT()
            opts_type = tfl.BuiltinOptions.Conv2DOptions
        else:
            code = tfl.BuiltinOperator.DEPTHWISE_CONV_2D
            opts = tfl.DepthwiseConv2DOptionsT()
            opts.depthMultiplier = 1
            opts_type = tfl.BuiltinOptions.DepthwiseConv2DOptions
        opts.padding = PADDING[case["padding"]]
        opts.strideH, opts.strideW = case["stride"]
        opts.dilationHFactor, opts.dilationWFactor = case["dilation"]
        opts.fusedActivationFunction = NONE
    elif op == "fc":
        w = const(case["filter"], "w", tfl.TensorType.INT8, np.int8)
        inputs.append(w)
        tensors.append(w)
        if case.get("bias") is not None:
            b = const(case["bias"], "b", tfl.TensorType.INT32, np.int32)
            inputs.append(b)
            tensors.append(b)
        else:
            inputs.append(None)
        code = tfl.BuiltinOperator.FULLY_CONNECTED
        opts = tfl.FullyConnectedOptionsT()
        opts.fusedActivationFunction = NONE
        opts.keepNumDims = False
        opts_type = tfl.BuiltinOptions.FullyConnectedOptions
    elif op == "add":
        x2 = act(case["input2"], "x2")
        inputs.append(x2)
        tensors.append(x2)
        code = tfl.BuiltinOperator.ADD
        opts = tfl.AddOptionsT()
        opts.fusedActivationFunction = NONE
        opts_type = tfl.BuiltinOptions.AddOptions
    elif op in ("avgpool", "maxpool"):
        code = tfl.BuiltinOperator.AVERAGE_POOL_2D if op == "avgpool" else tfl.BuiltinOperator.MAX_POOL_2D
        opts = tfl.Pool2DOptionsT()
        opts.padding = PADDING[case["padding"]]
        opts.strideH, opts.strideW = case["stride"]
        opts.filterHeight, opts.filterWidth = case["kernel"]
        opts.fusedActivationFunction = NONE
        opts_type = tfl.BuiltinOptions.Pool2DOptions
    elif op == "mean":
        axis = me.Tensor(shape=(2,), dtype=tfl.TensorType.INT32, data=np.array([1, 2], dtype=np.int32), name="axis")
        inputs.append(axis)
        tensors.append(axis)
        code = tfl.BuiltinOperator.MEAN
        opts = tfl.ReducerOptionsT()
        opts.keepDims = True
        opts_type = tfl.BuiltinOptions.ReducerOptions
    elif op == "softmax":
        code = tfl.BuiltinOperator.SOFTMAX
        opts = tfl.SoftmaxOptionsT()
        opts.beta = 1.0
        opts_type = tfl.BuiltinOptions.SoftmaxOptions
    else:
        raise ValueError(f"unknown op {op}")
    tensors.append(y)
    operator = me.Operator(opcode=code, inputs=inputs, outputs=[y])
    operator._fb.builtinOptionsType = opts_type
    operator._fb.builtinOptions = opts
    graph_inputs = [x] + ([inputs[1]] if op == "add" else [])
    sg = me.Subgraph(tensors=tensors, operators=[operator], inputs=graph_inputs, outputs=[y])
    return bytes(me.Model(subgraphs=[sg]).build())


def run(case):
    model = build(case)
    it = runtime.Interpreter.from_bytes(model, arena_size=4 << 20)
    xs = [case["input"]] + ([case["input2"]] if case["op"] == "add" else [])
    for i, spec in enumerate(xs):
        it.set_input(np.array(spec["data"], dtype=np.int8).reshape(spec["shape"]), i)
    it.invoke()
    return it.get_output(0).astype(np.int32).flatten().tolist()


def main():
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        try:
            out.append(run(c))
        except Exception as e:  # noqa: BLE001
            out.append(f"{type(e).__name__}: {e}")
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
