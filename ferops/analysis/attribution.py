"""Guided backprop (Springenberg et al.) and deconvnet (Zeiler & Fergus) images for one filter.

Both are the input gradient of a filter's strongest response, with the ReLU's
backward rule replaced (no library does this for Keras 3, hence these few lines):
- guided backprop passes gradient only where the forward input was positive
  *and* the backward signal is positive;
- deconvnet applies ReLU to the backward signal alone, ignoring the forward pass.
Max-pooling is left as is: its gradient routes the signal to the argmax of each
window, i.e. max-unpooling through the switches recorded on the forward pass.
The model is cloned with the ReLUs swapped, so the trained model is untouched;
the analysed layer is evaluated for the one filter each image asks about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

MODES = ("guided", "deconv")


@tf.custom_gradient
def guided_relu(x):
    y = tf.nn.relu(x)

    def grad(dy):
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

    return y, grad


@tf.custom_gradient
def deconv_relu(x):
    y = tf.nn.relu(x)

    def grad(dy):
        return tf.nn.relu(dy)

    return y, grad


_RULES = {"guided": guided_relu, "deconv": deconv_relu}


def _is_relu(layer) -> bool:
    act = getattr(layer, "activation", None)
    return act is not None and getattr(act, "__name__", "") == "relu" or isinstance(layer, keras.layers.ReLU)


@dataclass(eq=False)
class FilterBackprop:
    """A cloned model up to the input of conv layer `layer` (ReLUs swapped), and that layer's weights.

    The target layer itself is evaluated for the one filter each image asks for (patches x that filter's
    kernel), not for all of them: its full forward and backward passes would be a third of the cost.
    """
    trunk: keras.Model | None  # None: the target layer reads the model input directly
    kernel: tf.Tensor  # (kh * kw * C) x J
    bias: tf.Tensor  # J
    size: tuple[int, int]
    strides: tuple[int, int]
    padding: str
    rule: object  # the ReLU's backward rule, or None for a linear target layer
    input_shape: tuple
    step: object = field(default=None, repr=False)  # its traced gradient step, made on first use


def backprop_model(model: keras.Model, layer: str, mode: str) -> FilterBackprop:
    """`model` up to conv layer `layer`, with every ReLU's gradient replaced by `mode`'s rule (same weights)."""
    if mode not in MODES:
        raise ValueError(f"attribution mode {mode!r}: expected one of {MODES}")
    rule = _RULES[mode]
    target = model.get_layer(layer)
    if not isinstance(target, keras.layers.Conv2D) or tuple(target.dilation_rate) != (1, 1) or target.groups != 1:
        raise ValueError(f"{layer}: filter images need a plain Conv2D layer, got {type(target).__name__}")
    if getattr(target.activation, "__name__", "") not in ("relu", "linear"):
        raise ValueError(f"{layer}: activation {target.activation.__name__} has no guided/deconv rule here")

    def swap(old):
        config = old.get_config()
        if isinstance(old, keras.layers.ReLU):
            return keras.layers.Activation(rule, name=old.name)
        if _is_relu(old):
            config["activation"] = rule
        return old.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=swap)
    clone.set_weights(model.get_weights())
    source = clone.get_layer(layer).input
    trunk = None if source is clone.input else keras.Model(clone.input, source, name=f"{model.name}_{mode}_{layer}")
    kernel, *bias = target.get_weights()
    return FilterBackprop(
        trunk=trunk, kernel=tf.constant(kernel.reshape(-1, kernel.shape[-1]), tf.float32),
        bias=tf.constant(bias[0] if bias else np.zeros(kernel.shape[-1]), tf.float32),
        size=tuple(target.kernel_size), strides=tuple(target.strides), padding=target.padding.upper(),
        rule=rule if _is_relu(target) else None, input_shape=tuple(model.input_shape))


def filter_gradients(sub: FilterBackprop, images: np.ndarray, filters: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """N x H x W x C input gradient of max_{h,w} A_{filters[i]}(images[i]) through `sub` (a backprop_model).

    One backward pass per batch: each image's response is independent of the others, so the gradient of the
    summed per-image maxima is each image's own gradient. Gradients are w.r.t. raw pixels (the in-model
    rescaling is part of the chain), so they line up with the image as displayed.
    """
    filters = np.asarray(filters, np.int32)
    if sub.step is None:
        sub.step = _gradient_step(sub)
    step = sub.step
    parts = []
    for start in range(0, len(images), batch_size):
        x = tf.convert_to_tensor(np.asarray(images[start:start + batch_size]), tf.float32)
        parts.append(np.asarray(step(x, tf.convert_to_tensor(filters[start:start + batch_size]))))
    return np.concatenate(parts) if parts else np.zeros((0, *sub.input_shape[1:]), np.float32)


def _gradient_step(sub: FilterBackprop):
    kh, kw = sub.size
    sh, sw = sub.strides

    @tf.function(reduce_retracing=True)
    def step(x, j):
        with tf.GradientTape() as tape:
            tape.watch(x)
            h = x if sub.trunk is None else sub.trunk(x, training=False)
            h = tf.cast(h, tf.float32)  # a bf16/fp16 trunk: the target filter itself is evaluated in float32
            patches = tf.image.extract_patches(h, [1, kh, kw, 1], [1, sh, sw, 1], [1, 1, 1, 1], sub.padding)
            # filter j_i's pre-activation map on image i: N x H' x W'
            z = tf.einsum("nhwp,pn->nhw", patches, tf.gather(sub.kernel, j, axis=1)) + \
                tf.gather(sub.bias, j)[:, None, None]
            a = z if sub.rule is None else sub.rule(z)
            total = tf.reduce_sum(tf.reduce_max(a, axis=(1, 2)))
        return tape.gradient(total, x)

    return step
