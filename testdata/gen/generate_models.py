#!/usr/bin/env python3
"""Deterministic generator for clio's ONNX test models (testdata/models/).

Run from anywhere; paths are resolved relative to this file:

    python3 testdata/gen/generate_models.py --tf-python /tmp/tfenv/bin/python

What it writes (see testdata/README.md for the full list):

* models/<name>.onnx + <name>.input.npy + <name>.torch_out.npy
    small PyTorch models WITH weights (BatchNormalization kept, BN statistics
    randomised), exported with the TorchScript exporter at opset 13.
* models/graph_only/<name>.onnx + manifest.json
    real torchvision architectures, all initializers moved to external data
    whose .bin file is deleted (graph only), plus torch's parameter and MAC
    counts in the manifest.
* models/pretrained/ch_ppocr_mobile_v2.0_cls_infer.onnx (+ input / ort output)
    the pretrained PaddleOCR MobileNetV3-small text-direction classifier
    shipped in the PyPI wheel rapidocr-onnxruntime==1.4.4.
* Keras/tf2onnx models, produced by gen_keras_models.py, which needs a
    separate Python with TensorFlow (passed as --tf-python).
* models/manifest.json: shapes, parameter/MAC counts and op-type counts of the
    models that carry weights.

Every random number comes from a fixed seed, so re-running the script with the
same package versions reproduces the committed files byte for byte.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from onnx import external_data_helper
from torchvision.models.resnet import BasicBlock, conv1x1
from torchvision.models.vgg import make_layers

GEN_DIR = Path(__file__).resolve().parent
TESTDATA = GEN_DIR.parent
MODELS = TESTDATA / "models"
GRAPH_ONLY = MODELS / "graph_only"
PRETRAINED = MODELS / "pretrained"

OPSET = 13
# Largest |onnxruntime - torch| accepted for the small models.
TOLERANCE = 1e-4

RAPIDOCR_WHEEL = "rapidocr-onnxruntime==1.4.4"
RAPIDOCR_MEMBER = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
RAPIDOCR_SHA256 = "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"


# --------------------------------------------------------------------------
# Generic helpers
# --------------------------------------------------------------------------

def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Op type -> number of nodes in the main graph, sorted by op type."""
    counts = collections.Counter(node.op_type for node in model.graph.node)
    return dict(sorted(counts.items()))


def num_bn_modules(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def randomize_bn(model: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics so BN-fusion tests mean something.

    Uses torch's global RNG, so call it right after torch.manual_seed(...).
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.copy_(torch.randn_like(m.bias) * 0.1)


def make_constant_params_distinct(model: nn.Module) -> None:
    """Replace constant-initialised parameters (torchvision's zero biases) by small noise.

    The TorchScript exporter deduplicates identical initializers and feeds the
    duplicates through Identity nodes (VGG's zero conv biases end up as
    `Identity(features.15.bias)`), so the graph would no longer hold one
    initializer per parameter. Call after torch.manual_seed(...).
    """
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1 and bool((p == p.flatten()[0]).all()):
                p.copy_(torch.randn_like(p) * 0.01)


def check_one_initializer_per_tensor(m: onnx.ModelProto, model: nn.Module, name: str) -> None:
    """Every parameter and BN running statistic is its own initializer; no Identity copies."""
    expected = sum(1 for _ in model.parameters()) + 2 * num_bn_modules(model)
    got = len(m.graph.initializer)
    assert got == expected and "Identity" not in op_counts(m), \
        f"{name}: {got} initializers for {expected} tensors, ops {op_counts(m)}"


def fixed_input(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def count_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """MACs of Conv2d and Linear layers for input x (batch 1), via forward hooks.

    conv MACs   = output elements * (in_channels / groups) * kh * kw
    linear MACs = in_features * out_features (per row of the input)
    Biases, BN, activations and pooling are not counted.
    """
    totals = {"conv": 0, "linear": 0}

    def conv_hook(m: nn.Conv2d, _inp, out):
        kh, kw = m.kernel_size
        totals["conv"] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp, out):
        rows = out.numel() // m.out_features
        totals["linear"] += rows * m.in_features * m.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return {"macs": totals["conv"] + totals["linear"],
            "conv_macs": totals["conv"], "linear_macs": totals["linear"]}


def count_params(model: nn.Module) -> int:
    """torch's parameter count: sum of p.numel(); BN running stats are buffers, not counted."""
    return sum(p.numel() for p in model.parameters())


def export_onnx(model: nn.Module, x: torch.Tensor, path: Path, dynamic_axes=None) -> onnx.ModelProto:
    """Export with the flags that keep BatchNormalization nodes (see DESIGN.md)."""
    model.eval()
    torch.onnx.export(
        model,
        (x,),
        str(path),
        opset_version=OPSET,
        dynamo=False,
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes=dynamic_axes,
    )
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    return m


def run_ort(path: Path, x: np.ndarray, input_name: str | None = None) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = input_name or sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0]


def input_dims(model: onnx.ModelProto) -> list:
    """Input 0 dims: ints for fixed dims, strings for symbolic ones."""
    dims = []
    for d in model.graph.input[0].type.tensor_type.shape.dim:
        dims.append(d.dim_param if d.HasField("dim_param") else d.dim_value)
    return dims


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_npy(path: Path, arr: np.ndarray) -> None:
    np.save(str(path), np.ascontiguousarray(arr, dtype=np.float32))


# --------------------------------------------------------------------------
# 1. Small models with full weights
# --------------------------------------------------------------------------

def build_mobilenet_v2_tiny() -> nn.Module:
    """torchvision's own MobileNetV2 class with a shortened block setting.

    Residual Adds: 1 in the 24-stage, 2 in the 32-stage, 1 in the 64-stage.
    The final 1x1 conv is torchvision's fixed 1280 channels.
    """
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 2, 2]]
    return torchvision.models.MobileNetV2(num_classes=10, width_mult=0.35,
                                          inverted_residual_setting=setting)


def build_mobilenet_v2_w050_tiny() -> nn.Module:
    """Width 0.5. Residual Adds: one each in the 24-, 32- and 64-stages; the
    96-stage has stride 1 but in != out, so no Add there."""
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2], [6, 96, 1, 1]]
    return torchvision.models.MobileNetV2(num_classes=10, width_mult=0.5,
                                          inverted_residual_setting=setting)


class TinyResNet(nn.Module):
    """ResNet from torchvision BasicBlocks: widths 8/16/32, input 3x32x32."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = 8
        self.layer1 = self._make_layer(8, blocks=2, stride=1)   # identity shortcuts
        self.layer2 = self._make_layer(16, blocks=2, stride=2)  # projection + identity
        self.layer3 = self._make_layer(32, blocks=1, stride=2)  # projection
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def build_resnet_tiny() -> nn.Module:
    return TinyResNet()


class TinyVGG(nn.Module):
    """VGG-BN from torchvision's make_layers; 3x32x32 -> 32x4x4 -> 64 -> 10."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = make_layers([8, "M", 16, "M", 32, 32, "M"], batch_norm=True)
        self.classifier = nn.Sequential(
            nn.Linear(32 * 4 * 4, 64), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build_vgg_tiny() -> nn.Module:
    return TinyVGG()


class FlattenViewNet(nn.Module):
    """Conv net whose flatten is x.view(x.size(0), -1): Shape->Gather->Unsqueeze->Concat->Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(4 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


def build_mlp_flatten_view() -> nn.Module:
    return FlattenViewNet()


class HardswishNet(nn.Module):
    """Exercises Hardswish, Hardsigmoid, Sigmoid, PReLU, Pad (reflect + constant),
    AvgPool with padding, MaxPool with ceil_mode, Concat and Softmax."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(8)
        self.hswish = nn.Hardswish()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=0)           # after reflect pad: 34 -> 32
        self.prelu = nn.PReLU(8)
        self.avgpool = nn.AvgPool2d(3, stride=1, padding=1)  # count_include_pad=True
        self.gate = nn.Conv2d(8, 8, 1)
        self.hsig = nn.Hardsigmoid()
        self.sig_conv = nn.Conv2d(8, 8, 3, padding=0)         # after constant pad: 34 -> 32
        self.sig_bn = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 32 -> 16 (floor would give 15)
        self.head = nn.Linear(24, num_classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.hswish(self.stem_bn(self.stem(x)))
        x = self.prelu(self.conv2(F.pad(x, (1, 1, 1, 1), mode="reflect")))
        a = self.avgpool(x)
        b = x * self.hsig(self.gate(x))
        c = self.sig_bn(self.sig_conv(F.pad(x, (1, 1, 1, 1), mode="constant", value=0.25)))
        c = c * torch.sigmoid(c)
        x = torch.cat([a, b, c], dim=1)
        x = self.maxpool(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.softmax(self.head(x))


def build_hardswish_net() -> nn.Module:
    m = HardswishNet()
    with torch.no_grad():
        m.prelu.weight.uniform_(0.05, 0.3)
    return m


def check_mobilenet(m: onnx.ModelProto) -> None:
    ops = op_counts(m)
    assert ops.get("Add", 0) >= 2, f"need >= 2 residual Adds, got {ops}"
    assert ops.get("Clip", 0) > 0, "ReLU6 should export as Clip"


def check_resnet(m: onnx.ModelProto) -> None:
    ops = op_counts(m)
    assert ops.get("Add", 0) == 5, ops  # one per BasicBlock
    assert ops.get("MaxPool", 0) == 1, ops


def check_flatten_view(m: onnx.ModelProto) -> None:
    ops = op_counts(m)
    for op in ("Shape", "Gather", "Unsqueeze", "Concat", "Reshape"):
        assert ops.get(op, 0) >= 1, f"{op} missing from the view() export: {ops}"
    assert isinstance(input_dims(m)[0], str), f"batch dim should be symbolic: {input_dims(m)}"


def check_hardswish(m: onnx.ModelProto) -> None:
    ops = op_counts(m)
    for op in ("HardSigmoid", "Sigmoid", "PRelu", "Pad", "AveragePool", "MaxPool",
               "Concat", "Softmax"):
        assert ops.get(op, 0) >= 1, f"{op} missing: {ops}"
    pads = [n for n in m.graph.node if n.op_type == "Pad"]
    modes = sorted(a.s.decode() for n in pads for a in n.attribute if a.name == "mode")
    assert modes == ["constant", "reflect"], modes
    mp = next(n for n in m.graph.node if n.op_type == "MaxPool")
    assert any(a.name == "ceil_mode" and a.i == 1 for a in mp.attribute)
    ap = next(n for n in m.graph.node if n.op_type == "AveragePool")
    assert any(a.name == "pads" and any(a.ints) for a in ap.attribute)


# name, builder, seed, input shape, dynamic_axes, extra check
SMALL_MODELS = [
    ("mobilenet_v2_tiny", build_mobilenet_v2_tiny, 101, (1, 3, 32, 32), None, check_mobilenet),
    ("mobilenet_v2_w050_tiny", build_mobilenet_v2_w050_tiny, 102, (1, 3, 32, 32), None, check_mobilenet),
    ("resnet_tiny", build_resnet_tiny, 103, (1, 3, 32, 32), None, check_resnet),
    ("vgg_tiny", build_vgg_tiny, 104, (1, 3, 32, 32), None, None),
    ("mlp_flatten_view", build_mlp_flatten_view, 105, (1, 3, 32, 32),
     {"input": {0: "batch"}, "output": {0: "batch"}}, check_flatten_view),
    ("hardswish_net", build_hardswish_net, 106, (1, 3, 32, 32), None, check_hardswish),
]


def generate_small_model(name, builder, seed, shape, dynamic_axes, check) -> dict:
    torch.manual_seed(seed)
    model = builder()
    # torchvision initialises classifiers with N(0, 0.01), which makes logits
    # tiny; PyTorch's default Linear init gives outputs of a more useful size.
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    randomize_bn(model)
    make_constant_params_distinct(model)
    model.eval()

    x_np = fixed_input(shape, seed)
    x = torch.from_numpy(x_np)
    with torch.no_grad():
        torch_out = model(x).numpy()

    path = MODELS / f"{name}.onnx"
    m = export_onnx(model, x, path, dynamic_axes)
    ops = op_counts(m)
    n_bn = num_bn_modules(model)
    assert n_bn > 0 and ops.get("BatchNormalization", 0) == n_bn, \
        f"{name}: {n_bn} BN modules but ops {ops}"
    check_one_initializer_per_tensor(m, model, name)
    if check:
        check(m)

    ort_out = run_ort(path, x_np)
    diff = float(np.max(np.abs(ort_out - torch_out)))
    assert diff < TOLERANCE, f"{name}: ort vs torch max abs diff {diff}"
    if dynamic_axes:  # the symbolic batch must really work
        x2 = fixed_input((3,) + tuple(shape[1:]), seed + 1000)
        with torch.no_grad():
            t2 = model(torch.from_numpy(x2)).numpy()
        diff2 = float(np.max(np.abs(run_ort(path, x2) - t2)))
        assert diff2 < TOLERANCE, f"{name}: batch-3 diff {diff2}"
        print(f"  {name}: batch 3 via symbolic dim ok (max abs diff {diff2:.2e})")

    save_npy(MODELS / f"{name}.input.npy", x_np)
    save_npy(MODELS / f"{name}.torch_out.npy", torch_out)
    print(f"  {name}: {path.stat().st_size} B, ort vs torch max abs diff {diff:.2e}")
    return {
        "file": path.name,
        "source": "torch",
        "layout": "NCHW",
        "input_shape": list(shape),
        "input_dims": input_dims(m),
        "output_shape": list(torch_out.shape),
        "params": count_params(model),
        **count_macs(model, x),
        "batchnorm_nodes": ops.get("BatchNormalization", 0),
        "ort_vs_torch_max_abs_diff": diff,
        "input_npy": f"{name}.input.npy",
        "oracle_npy": f"{name}.torch_out.npy",
        "op_counts": ops,
    }


# --------------------------------------------------------------------------
# 2. Graph-only exports of real torchvision architectures
# --------------------------------------------------------------------------

# file stem, architecture, constructor, input shape, num_classes, width_mult
GRAPH_ONLY_MODELS = [
    ("mobilenet_v2_224", "mobilenet_v2", lambda: torchvision.models.mobilenet_v2(),
     (1, 3, 224, 224), 1000, 1.0),
    ("mobilenet_v2_w035_224", "mobilenet_v2",
     lambda: torchvision.models.mobilenet_v2(width_mult=0.35), (1, 3, 224, 224), 1000, 0.35),
    ("mobilenet_v2_w050_224", "mobilenet_v2",
     lambda: torchvision.models.mobilenet_v2(width_mult=0.5), (1, 3, 224, 224), 1000, 0.5),
    ("resnet18_224", "resnet18", lambda: torchvision.models.resnet18(), (1, 3, 224, 224), 1000, None),
    ("vgg11_bn_224", "vgg11_bn", lambda: torchvision.models.vgg11_bn(), (1, 3, 224, 224), 1000, None),
    ("vgg16_bn_224", "vgg16_bn", lambda: torchvision.models.vgg16_bn(), (1, 3, 224, 224), 1000, None),
    ("mobilenet_v2_32", "mobilenet_v2", lambda: torchvision.models.mobilenet_v2(num_classes=10),
     (1, 3, 32, 32), 10, 1.0),
    ("resnet18_32", "resnet18", lambda: torchvision.models.resnet18(num_classes=10),
     (1, 3, 32, 32), 10, None),
]


def generate_graph_only(stem, arch, ctor, shape, num_classes, width_mult, tmp: Path) -> dict:
    torch.manual_seed(0)
    model = ctor()
    randomize_bn(model)
    make_constant_params_distinct(model)
    model.eval()
    x_np = fixed_input(shape, 0)
    x = torch.from_numpy(x_np)
    with torch.no_grad():
        torch_out = model(x).numpy()

    full = tmp / f"{stem}.full.onnx"
    m = export_onnx(model, x, full)
    ops = op_counts(m)
    n_bn = num_bn_modules(model)
    assert ops.get("BatchNormalization", 0) == n_bn > 0, f"{stem}: {n_bn} BN, ops {ops}"
    check_one_initializer_per_tensor(m, model, stem)

    # All initializers are float weights (shapes are Constant nodes), so the
    # Rust side can regenerate every one of them from its dims.
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in m.graph.initializer), stem
    bin_name = f"{stem}.weights.bin"
    external_data_helper.convert_model_to_external_data(
        m, all_tensors_to_one_file=True, location=bin_name, size_threshold=0)
    out = GRAPH_ONLY / f"{stem}.onnx"
    onnx.save_model(m, str(out))
    bin_path = GRAPH_ONLY / bin_name
    assert bin_path.exists(), f"{bin_path} was not written"
    # Check the graph with its weights before throwing the weights away.
    diff = float(np.max(np.abs(run_ort(out, x_np) - torch_out)))
    assert diff < 1e-3, f"{stem}: ort vs torch diff {diff}"
    bin_path.unlink()
    full.unlink()

    reloaded = onnx.load(str(out), load_external_data=False)
    n_ext = sum(external_data_helper.uses_external_data(t) for t in reloaded.graph.initializer)
    assert n_ext == len(reloaded.graph.initializer) > 0
    print(f"  {stem}: {out.stat().st_size} B, {n_ext} external initializers, "
          f"ort vs torch diff {diff:.2e}")
    entry = {
        "file": out.name,
        "source": "torchvision",
        "architecture": arch,
        "layout": "NCHW",
        "input_shape": list(shape),
        "output_shape": list(torch_out.shape),
        "num_classes": num_classes,
        "params": count_params(model),
        **count_macs(model, x),
        "batchnorm_nodes": ops.get("BatchNormalization", 0),
        "initializers": len(reloaded.graph.initializer),
        "external_data_location": bin_name,
        "external_data_bytes": sum(
            int(dict((e.key, e.value) for e in t.external_data)["length"])
            for t in reloaded.graph.initializer),
        "op_counts": ops,
    }
    if width_mult is not None:
        entry["width_mult"] = width_mult
    return entry


# --------------------------------------------------------------------------
# 3. Pretrained PaddleOCR classifier from the rapidocr-onnxruntime wheel
# --------------------------------------------------------------------------

def fetch_wheel(requirement: str, wheel_dir: Path) -> Path:
    """Return the wheel for `name==version`, running `pip download` if it is not cached."""
    name, version = requirement.split("==")
    prefix = f"{name.replace('-', '_')}-{version}-"
    found = sorted(wheel_dir.glob(prefix + "*.whl")) if wheel_dir.exists() else []
    if not found:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--no-deps",
                        "-d", str(wheel_dir)], check=True)
        found = sorted(wheel_dir.glob(prefix + "*.whl"))
    assert found, f"no wheel for {requirement} in {wheel_dir}"
    return found[0]


def generate_ppocr_cls(wheel_dir: Path) -> dict:
    wheel = fetch_wheel(RAPIDOCR_WHEEL, wheel_dir)
    out = PRETRAINED / Path(RAPIDOCR_MEMBER).name
    with zipfile.ZipFile(wheel) as z:
        out.write_bytes(z.read(RAPIDOCR_MEMBER))
    digest = sha256(out)
    assert digest == RAPIDOCR_SHA256, f"unexpected sha256 {digest}"
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    ops = op_counts(m)

    # rapidocr feeds 3x48x192 crops normalised to [-1, 1] (config.yaml cls_image_shape).
    shape = (1, 3, 48, 192)
    x = np.random.default_rng(301).uniform(-1.0, 1.0, shape).astype(np.float32)
    y = run_ort(out, x)
    # second opinion: the same model with all onnxruntime graph optimisations off
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    y0 = ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"]).run(
        None, {m.graph.input[0].name: x})[0]
    diff = float(np.max(np.abs(y - y0)))
    assert diff < 1e-4, diff
    stem = out.name[: -len(".onnx")]
    save_npy(PRETRAINED / f"{stem}.input.npy", x)
    save_npy(PRETRAINED / f"{stem}.ort_out.npy", y)
    dims = [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in m.graph.input[0].type.tensor_type.shape.dim]
    print(f"  {out.name}: {out.stat().st_size} B, opset {m.opset_import[0].version}, "
          f"input {m.graph.input[0].name} {dims}, output {list(y.shape)}, "
          f"ort opt vs no-opt diff {diff:.2e}")
    return {
        "file": f"pretrained/{out.name}",
        "source": f"PyPI {RAPIDOCR_WHEEL}: {RAPIDOCR_MEMBER} (PaddleOCR, Apache-2.0)",
        "sha256": digest,
        "layout": "NCHW",
        "opset": m.opset_import[0].version,
        "input_name": m.graph.input[0].name,
        "input_dims": dims,
        "input_shape": list(shape),
        "output_shape": list(y.shape),
        "initializers": len(m.graph.initializer),
        "input_npy": f"pretrained/{stem}.input.npy",
        "oracle_npy": f"pretrained/{stem}.ort_out.npy",
        "op_counts": ops,
    }


# --------------------------------------------------------------------------
# 4. Keras / tf2onnx models (separate interpreter with TensorFlow)
# --------------------------------------------------------------------------

def generate_keras(tf_python: str, wheel_dir: Path, tmp: Path) -> dict:
    """Run gen_keras_models.py under `tf_python`; it returns manifest entries as JSON."""
    result = tmp / "keras_entries.json"
    env = dict(os.environ, PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
    subprocess.run([tf_python, str(GEN_DIR / "gen_keras_models.py"), "--out", str(MODELS),
                    "--wheel-dir", str(wheel_dir), "--result", str(result)],
                   check=True, env=env)
    entries = json.loads(result.read_text())
    # Verify the Keras outputs with *this* onnxruntime too.
    for e in entries["models"]:
        x = np.load(MODELS / e["input_npy"])
        ref = np.load(MODELS / e["oracle_npy"])
        diff = float(np.max(np.abs(run_ort(MODELS / e["file"], x) - ref)))
        assert diff < TOLERANCE, f"{e['file']}: ort vs keras {diff}"
        print(f"  {e['file']}: ort vs keras max abs diff {diff:.2e}")
    return entries


# --------------------------------------------------------------------------

def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tf-python", default=os.environ.get("TF_PYTHON"),
                    help="python with tensorflow-cpu, tf-keras, tf2onnx, onnxruntime, h5py "
                         "(default: $TF_PYTHON)")
    ap.add_argument("--skip-keras", action="store_true",
                    help="leave the Keras models and their manifest entries as they are")
    ap.add_argument("--wheel-dir", default="/tmp/clio-wheels", type=Path,
                    help="cache for the downloaded PyPI wheels")
    args = ap.parse_args()
    if not args.skip_keras and not args.tf_python:
        ap.error("pass --tf-python (see testdata/README.md) or --skip-keras")

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for d in (MODELS, GRAPH_ONLY, PRETRAINED):
        d.mkdir(parents=True, exist_ok=True)

    old_small = json.loads((MODELS / "manifest.json").read_text()) \
        if (MODELS / "manifest.json").exists() else {}
    old_graph = json.loads((GRAPH_ONLY / "manifest.json").read_text()) \
        if (GRAPH_ONLY / "manifest.json").exists() else {}

    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                "numpy": np.__version__}
    print("versions:", versions)

    print("small models with weights:")
    small = [generate_small_model(*spec) for spec in SMALL_MODELS]

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        print("graph-only torchvision exports:")
        graph = [generate_graph_only(*spec, tmp) for spec in GRAPH_ONLY_MODELS]

        print("pretrained:")
        pretrained = [generate_ppocr_cls(args.wheel_dir)]

        if args.skip_keras:
            keras = {"models": [e for e in old_small.get("models", []) if e["source"] == "keras"],
                     "pretrained": [e for e in old_small.get("pretrained", [])
                                    if e.get("layout") == "NHWC"],
                     "graph_only": [e for e in old_graph.get("models", [])
                                    if e["source"] == "keras"]}
        else:
            print("keras / tf2onnx:")
            keras = generate_keras(args.tf_python, args.wheel_dir, tmp)

    write_json(MODELS / "manifest.json", {
        "generator": "testdata/gen/generate_models.py",
        "versions": versions,
        "models": small + keras["models"],
        "pretrained": pretrained + keras.get("pretrained", []),
    })
    write_json(GRAPH_ONLY / "manifest.json", {
        "generator": "testdata/gen/generate_models.py",
        "note": "Initializers live in external data '<name>.weights.bin', which is deliberately "
                "not committed. params = sum of torch p.numel() (BN running stats excluded); "
                "macs = conv + linear multiply-accumulates at batch 1 "
                "(conv: out_elements * in_channels/groups * kh * kw; linear: in * out).",
        "versions": versions,
        "models": graph + keras["graph_only"],
    })

    ours = [TESTDATA / "README.md", *GEN_DIR.rglob("*"), *MODELS.rglob("*")]
    total = sum(p.stat().st_size for p in ours if p.is_file())
    print(f"total size of testdata/{{README.md,gen,models}}: {total} B ({total / 1e6:.2f} MB)")
    stray = [p for p in TESTDATA.rglob("*.bin")]
    assert not stray, f"external data files left behind: {stray}"


if __name__ == "__main__":
    main()
