#!/usr/bin/env python3
"""TensorFlow Lite's own post-training int8 quantization of the same ONNX test model, on the
same calibration data, as the reference column of docs/benchmarks.md ("Quantization quality").

Not run in CI (needs tensorflow-cpu; here: /tmp/tfenv/bin/python, tensorflow-cpu 2.21).

The ONNX model (Conv, BatchNormalization, Relu, Clip, Add, MaxPool, GlobalAveragePool,
Flatten, Gemm) is rebuilt op by op as a Keras NHWC model with the same weights (explicit
ZeroPadding2D reproduces PyTorch's symmetric padding), checked against onnxruntime, then
converted with `tf.lite.TFLiteConverter` (Optimize.DEFAULT, representative dataset = the
calibration samples, TFLITE_BUILTINS_INT8; per-channel conv weights and per-tensor fully
connected weights, TFLite's defaults). The output SQNR of the int8 model vs the float model
(onnxruntime) and the top-1 agreement are printed on the evaluation samples.

Usage: tflite_ptq.py MODEL.onnx CALIB.npy EVAL.npy
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
from onnx import numpy_helper


def keras_from_onnx(path):
    m = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            init[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    inp = m.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    x = tf.keras.Input(shape=(dims[2], dims[3], dims[1]), batch_size=dims[0])
    vals = {inp.name: x}
    L = tf.keras.layers
    for n in m.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        ins = [vals.get(i) for i in n.input]
        if n.op_type == "Constant":
            continue
        if n.op_type == "Conv":
            w = init[n.input[1]]
            b = init[n.input[2]] if len(n.input) > 2 and n.input[2] else None
            pads = list(a.get("pads", [0, 0, 0, 0]))
            strides = tuple(a.get("strides", [1, 1]))
            dil = tuple(a.get("dilations", [1, 1]))
            group = a.get("group", 1)
            y = ins[0]
            if any(pads):
                y = L.ZeroPadding2D(((pads[0], pads[2]), (pads[1], pads[3])))(y)
            if group == 1:
                conv = L.Conv2D(w.shape[0], w.shape[2:], strides=strides, dilation_rate=dil, use_bias=b is not None)
                y = conv(y)
                conv.set_weights([w.transpose(2, 3, 1, 0)] + ([b] if b is not None else []))
            elif group == w.shape[0] and w.shape[1] == 1:
                conv = L.DepthwiseConv2D(w.shape[2:], strides=strides, dilation_rate=dil, use_bias=b is not None)
                y = conv(y)
                conv.set_weights([w.transpose(2, 3, 0, 1)] + ([b] if b is not None else []))
            else:
                raise ValueError("grouped conv not supported")
        elif n.op_type == "BatchNormalization":
            bn = L.BatchNormalization(epsilon=a.get("epsilon", 1e-5))
            y = bn(ins[0])
            bn.set_weights([init[n.input[i]] for i in (1, 2, 3, 4)])
        elif n.op_type == "Relu":
            y = L.ReLU()(ins[0])
        elif n.op_type == "Clip":
            lo = float(init[n.input[1]]) if len(n.input) > 1 and n.input[1] else a.get("min", 0.0)
            hi = float(init[n.input[2]]) if len(n.input) > 2 and n.input[2] else a.get("max", 6.0)
            assert lo == 0.0, "only ReLU-like clips"
            y = L.ReLU(max_value=hi)(ins[0])
        elif n.op_type == "Add":
            y = L.Add()([ins[0], ins[1]])
        elif n.op_type == "MaxPool":
            pads = list(a.get("pads", [0, 0, 0, 0]))
            y = ins[0]
            if any(pads):
                # Inputs of the test models' max pools are post-ReLU (>= 0): zero padding is exact.
                y = L.ZeroPadding2D(((pads[0], pads[2]), (pads[1], pads[3])))(y)
            y = L.MaxPooling2D(tuple(a["kernel_shape"]), strides=tuple(a.get("strides", [1, 1])))(y)
        elif n.op_type == "GlobalAveragePool":
            y = L.GlobalAveragePooling2D(keepdims=True)(ins[0])
        elif n.op_type == "Flatten":
            y = L.Flatten()(ins[0])
        elif n.op_type == "Gemm":
            w = init[n.input[1]]
            if a.get("transB", 0):
                w = w.T
            b = init[n.input[2]] if len(n.input) > 2 else None
            d = L.Dense(w.shape[1], use_bias=b is not None)
            y = d(ins[0])
            d.set_weights([w * a.get("alpha", 1.0)] + ([b * a.get("beta", 1.0)] if b is not None else []))
        else:
            raise ValueError(f"unsupported op {n.op_type}")
        vals[n.output[0]] = y
    out = vals[m.graph.output[0].name]
    return tf.keras.Model(x, out)


def sqnr(ref, approx):
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref.astype(np.float64) - approx) ** 2))


def main():
    path, calib_path, eval_path = sys.argv[1:4]
    calib = np.load(calib_path).astype(np.float32)
    ev = np.load(eval_path).astype(np.float32)
    km = keras_from_onnx(path)
    sess = ort.InferenceSession(path)
    iname = sess.get_inputs()[0].name
    ref = np.concatenate([sess.run(None, {iname: ev[i:i + 1]})[0] for i in range(len(ev))])
    kout = np.concatenate([km(ev[i:i + 1].transpose(0, 2, 3, 1)).numpy() for i in range(len(ev))])
    print(f"keras vs onnxruntime max abs diff: {np.abs(kout - ref).max():.2e}")

    def rep():
        for i in range(len(calib)):
            yield [calib[i:i + 1].transpose(0, 2, 3, 1)]

    conv = tf.lite.TFLiteConverter.from_keras_model(km)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tfl = conv.convert()
    for label, resolver in [
        # The reference kernels: what TFLM and CMSIS-NN match bit for bit.
        ("reference kernels", tf.lite.experimental.OpResolverType.BUILTIN_REF),
        # The default CPU path (XNNPACK), whose requantization rounds in float.
        ("default (XNNPACK)", tf.lite.experimental.OpResolverType.AUTO),
    ]:
        it = tf.lite.Interpreter(model_content=tfl, experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        i0, o0 = it.get_input_details()[0], it.get_output_details()[0]
        outs = []
        for i in range(len(ev)):
            it.set_tensor(i0["index"], ev[i:i + 1].transpose(0, 2, 3, 1))
            it.invoke()
            outs.append(it.get_tensor(o0["index"]).copy())
        q = np.concatenate(outs)
        agree = np.mean(np.argmax(q, axis=-1) == np.argmax(ref, axis=-1))
        print(f"{path}: TFLite int8 PTQ, {label}: output SQNR {sqnr(ref, q):.2f} dB, top-1 agreement "
              f"{100 * agree:.1f}% ({len(ev)} samples, {len(calib)} calibration samples)")


if __name__ == "__main__":
    main()
