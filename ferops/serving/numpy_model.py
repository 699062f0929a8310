"""A Keras-free forward pass over a ferops .keras file: one photo answered without starting Keras.

On this 2-core EPYC `ferops predict photo.png` spent most of its 9 s starting Keras
(3.9 s to import it on JAX) and building the layers (about 2 s); the forward pass of
one face takes milliseconds. The paper CNN is a chain of Rescaling, Conv2D,
MaxPooling2D, Dropout, Flatten and Dense layers, a few NumPy lines each, so a few
photos are scored from the same .keras file (its config.json and model.weights.h5;
no code is ever run from it). A file with any other layer, or a graph that is not a
plain chain, is refused with the reason and the caller loads it in Keras instead.
It computes in float32 whatever the model was trained in. tests/test_numpy_model.py
checks it against Keras on the same files.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Layers that do nothing at inference (training-only noise and regularisers).
INFERENCE_IDENTITY = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
                      "ActivityRegularization", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
                      "RandomContrast", "RandomBrightness"}
_CHUNK = 64  # faces per im2col pass: keeps the conv2 patch matrix of a full-width model near 240 MB


class NotSupported(Exception):
    """This .keras file holds something the NumPy runtime does not compute; use Keras for it."""


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x, "relu": lambda x: np.maximum(x, 0.0), "sigmoid": _sigmoid, "softmax": _softmax,
    "tanh": np.tanh,
}


def _activation(config: dict) -> Callable:
    name = config.get("activation", "linear")
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise NotSupported(f"activation {name!r}")
    return ACTIVATIONS[name]


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' rule (Keras on every backend): output ceil(size / stride), the extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides, padding: str) -> np.ndarray:
    """NHWC convolution as one matrix product per chunk of faces (im2col)."""
    kh, kw, channels, filters = kernel.shape
    if padding == "same":
        (top, bottom), (left, right) = (_same_padding(x.shape[1], kh, strides[0]),
                                        _same_padding(x.shape[2], kw, strides[1]))
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    flat = kernel.transpose(2, 0, 1, 3).reshape(channels * kh * kw, filters)  # windows come out as (c, i, j)
    out = []
    for at in range(0, len(x), _CHUNK):
        windows = sliding_window_view(x[at:at + _CHUNK], (kh, kw), axis=(1, 2))[:, ::strides[0], ::strides[1]]
        n, h, w = windows.shape[:3]
        out.append((windows.reshape(n * h * w, -1) @ flat).reshape(n, h, w, filters))
    y = np.concatenate(out) if out else np.zeros((0, 1, 1, filters), np.float32)
    return y + bias if bias is not None else y


def max_pool(x: np.ndarray, pool, strides) -> np.ndarray:
    """'valid' max pooling; a pool that tiles the image (the paper's 2x2 / 2) is one reshape."""
    (ph, pw), (sh, sw) = pool, strides
    if (ph, pw) == (sh, sw):
        n, height, width, c = x.shape
        h, w = height // ph, width // pw
        return x[:, :h * ph, :w * pw].reshape(n, h, ph, w, pw, c).max(axis=(2, 4))
    return sliding_window_view(x, (ph, pw), axis=(1, 2))[:, ::sh, ::sw].max(axis=(-2, -1))


@dataclass(frozen=True)
class Step:
    """One layer of the chain: its name (for messages) and what it does to a float32 batch."""
    name: str
    apply: Callable[[np.ndarray], np.ndarray]


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _step(kind: str, config: dict, weights: list[np.ndarray]) -> Step:
    """The NumPy step for one layer, or NotSupported naming what is missing."""
    name = config.get("name", kind)
    if config.get("data_format", "channels_last") != "channels_last":
        raise NotSupported(f"layer {name}: data_format {config['data_format']}")
    if kind in INFERENCE_IDENTITY or kind == "InputLayer":
        return Step(name, lambda x: x)
    if kind == "Rescaling":
        scale = np.asarray(config["scale"], np.float32)
        offset = np.asarray(config["offset"], np.float32)
        return Step(name, lambda x: x * scale + offset)
    if kind == "Conv2D":
        if _pair(config.get("dilation_rate", 1)) != (1, 1) or config.get("groups", 1) != 1:
            raise NotSupported(f"layer {name}: dilated or grouped convolution")
        if config["padding"] not in ("same", "valid"):
            raise NotSupported(f"layer {name}: padding {config['padding']}")
        act, strides, padding = _activation(config), _pair(config["strides"]), config["padding"]
        kernel, bias = weights[0], (weights[1] if config.get("use_bias", True) else None)
        if kernel.shape != (*_pair(config["kernel_size"]), kernel.shape[2], config["filters"]):
            raise NotSupported(f"layer {name}: kernel {kernel.shape} does not match its config")
        return Step(name, lambda x: act(conv2d(x, kernel, bias, strides, padding)))
    if kind == "MaxPooling2D":
        if config["padding"] != "valid":
            raise NotSupported(f"layer {name}: padding {config['padding']}")
        pool = _pair(config["pool_size"])
        strides = _pair(config["strides"]) if config.get("strides") is not None else pool
        return Step(name, lambda x: max_pool(x, pool, strides))
    if kind == "Flatten":
        return Step(name, lambda x: x.reshape(len(x), -1))
    if kind == "Dense":
        act, kernel = _activation(config), weights[0]
        bias = weights[1] if config.get("use_bias", True) else np.zeros(kernel.shape[1], np.float32)
        if kernel.shape[1] != config["units"]:
            raise NotSupported(f"layer {name}: kernel {kernel.shape} does not match units {config['units']}")
        return Step(name, lambda x: act(x @ kernel + bias))
    if kind in ("Activation", "ReLU", "Softmax"):
        act = _activation({"activation": {"ReLU": "relu", "Softmax": "softmax"}.get(kind) or config["activation"]})
        if kind == "ReLU" and (config.get("max_value") is not None or config.get("negative_slope", 0.0)
                               or config.get("threshold", 0.0)):
            raise NotSupported(f"layer {name}: a clipped or leaky ReLU")
        return Step(name, act)
    raise NotSupported(f"layer {name}: {kind}")


def _snake(class_name: str) -> str:
    """Keras' name for a layer's group in model.weights.h5 (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _layer_weights(weights_h5: bytes, layers: list[dict]) -> list[list[np.ndarray]]:
    """Each layer's variables from model.weights.h5, where Keras keys them by class name and order."""
    import h5py

    seen: dict[str, int] = {}
    out = []
    with h5py.File(io.BytesIO(weights_h5), "r") as h5:
        for layer in layers:
            if layer["class_name"] == "InputLayer":
                out.append([])
                continue
            key = _snake(layer["class_name"])
            seen[key] = seen.get(key, -1) + 1
            group = h5.get(f"layers/{key}{'_' + str(seen[key]) if seen[key] else ''}/vars")
            out.append([] if group is None else
                       [np.asarray(group[str(i)], np.float32) for i in range(len(group))])
    return out


@dataclass(frozen=True)
class NumpyModel:
    """The chain of steps with the two things callers ask a Keras model: shapes and predict_on_batch."""
    steps: tuple[Step, ...]
    input_shape: tuple
    output_shape: tuple

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        for step in self.steps:
            x = step.apply(x)
        return x.astype(np.float32, copy=False)


def load_numpy_model(path: str | Path) -> NumpyModel:
    """The .keras file at `path` as a NumpyModel; NotSupported (with the reason) when it is not a plain chain."""
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))
        weights_h5 = archive.read("model.weights.h5")
    config = saved.get("config", {})
    layers = config.get("layers")
    if saved.get("class_name") not in ("Functional", "Sequential") or not layers:
        raise NotSupported(f"model class {saved.get('class_name')}")
    if saved["class_name"] == "Functional":  # a chain: each layer reads the one before it
        names = [layer["config"]["name"] for layer in layers]
        for prev, layer in zip(names, layers[1:]):
            if [t["keras_history"][0] for t in _inbound(layer)] != [prev]:
                raise NotSupported(f"layer {layer['config']['name']}: not a plain chain")
    steps = tuple(_step(layer["class_name"], layer["config"], w)
                  for layer, w in zip(layers, _layer_weights(weights_h5, layers)))
    shape = _input_shape(layers[0])
    probe = NumpyModel(steps, shape, ())
    out = probe.predict_on_batch(np.zeros((1, *shape[1:]), np.float32))
    return NumpyModel(steps, shape, (None, *out.shape[1:]))


def _inbound(layer: dict) -> list[dict]:
    """The tensors a functional layer's (single) call reads, from its config's inbound_nodes."""
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) != 1:
        raise NotSupported(f"layer {layer['config']['name']}: called {len(nodes)} times")
    args = nodes[0].get("args", [])
    tensors = [a for a in args if isinstance(a, dict) and a.get("class_name") == "__keras_tensor__"]
    return [t["config"] for t in tensors]


def _input_shape(first: dict) -> tuple:
    config = first["config"]
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if not shape or any(v is None for v in shape[1:]):
        raise NotSupported("input shape not fixed")
    return (None, *(int(v) for v in shape[1:]))


__all__ = ["NotSupported", "NumpyModel", "load_numpy_model"]
