#!/usr/bin/env python3
"""Writes the binary hostile inputs of testdata/bad/ (the text ones are written by hand).

Usage (repository root): pip install onnx numpy && python3 testdata/gen/generate_bad_inputs.py
Deterministic: the same bytes on every run.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BAD = os.path.join(ROOT, "testdata", "bad")
GOOD = os.path.join(ROOT, "testdata", "models", "resnet_tiny.onnx")


def write(name, data):
    with open(os.path.join(BAD, name), "wb") as f:
        f.write(data)


def tiny_model(nodes, inits, out_shape=(1, 2, 4, 4)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))
    g = helper.make_graph(nodes, "bad", [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="clio-bad-inputs")
    m.ir_version = 7
    return m.SerializeToString()


def main():
    good = open(GOOD, "rb").read()
    # Cut in the middle of the graph's protobuf.
    write("onnx_truncated.onnx", good[: len(good) // 3])
    # Overwrite a stretch of bytes near the start (field tags and lengths become garbage).
    corrupted = bytearray(good)
    corrupted[20:60] = b"\xff" * 40
    write("onnx_corrupted.onnx", bytes(corrupted))
    # An op clio does not know.
    write("onnx_unknown_op.onnx", tiny_model([helper.make_node("FrobnicateNd", ["x"], ["y"], name="frob")], []))
    # An initializer declaring 10^12 elements (no data): must be refused before allocating.
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000000, 1000000])
    write("onnx_huge_initializer.onnx", tiny_model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [huge]))
    # NaN in a conv filter.
    w = np.ones((2, 2, 1, 1), dtype=np.float32)
    w[1, 0, 0, 0] = np.nan
    nan = helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.flatten().tolist())
    write("onnx_nan_weights.onnx", tiny_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [nan]))
    # A conv whose filter's input channels do not match the input.
    w3 = helper.make_tensor("w", TensorProto.FLOAT, [2, 3, 1, 1], [0.5] * 6)
    write("onnx_shape_mismatch.onnx", tiny_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [w3]))
    # A cycle: a = x + b, b = relu(a).
    cyc = [helper.make_node("Add", ["x", "b"], ["a"], name="add"), helper.make_node("Relu", ["a"], ["y"], name="relu")]
    cyc.append(helper.make_node("Identity", ["y"], ["b"], name="back"))
    write("onnx_cycle.onnx", tiny_model(cyc, []))
    # A truncated .npy input (header promises 3072 floats, 100 bytes follow).
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 32, 32), }"
    header += b" " * (118 - len(header)) + b"\n"
    write("input_truncated.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 100)


if __name__ == "__main__":
    main()
