"""Guided backprop and deconvnet against a NumPy reference, and mask energy on a filter built for one region."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ferops.analysis.attribution import backprop_model, filter_gradients
from ferops.analysis.mask_energy import mask_shares


def _tiny_net(rng) -> keras.Model:
    """One conv (2 filters, ReLU), 2x2 max-pool, and a linear 1x1 read-out with mixed-sign weights (the target)."""
    x = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(x)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    out = keras.layers.Conv2D(2, 1, name="readout")(h)
    model = keras.Model(x, out)
    model.get_layer("conv").set_weights([rng.normal(size=(3, 3, 1, 2)), np.array([0.1, -0.1])])
    model.get_layer("readout").set_weights([np.array([[[[1.0, -0.7], [-0.8, 1.2]]]]), np.zeros(2)])
    return model


def _reference(model: keras.Model, image: np.ndarray, j: int, mode: str) -> np.ndarray:
    """Loop-by-loop forward pass with recorded pool switches, then the backward pass by hand."""
    k1, b1 = model.get_layer("conv").get_weights()
    w2 = model.get_layer("readout").get_weights()[0][0, 0]  # C x J
    x = image[..., 0]
    z = np.zeros((6, 6, 2))
    for h in range(6):
        for w in range(6):
            z[h, w] = np.tensordot(x[h:h + 3, w:w + 3], k1[..., 0, :], axes=([0, 1], [0, 1])) + b1
    a = np.maximum(z, 0)
    pooled, switch = np.zeros((3, 3, 2)), {}
    for h in range(3):
        for w in range(3):
            for c in range(2):
                win = a[2 * h:2 * h + 2, 2 * w:2 * w + 2, c]
                dh, dw = np.unravel_index(win.argmax(), win.shape)
                pooled[h, w, c], switch[h, w, c] = win[dh, dw], (2 * h + dh, 2 * w + dw)
    out = pooled @ w2[:, j]
    h, w = np.unravel_index(out.argmax(), out.shape)
    d_pool = np.zeros((3, 3, 2))
    d_pool[h, w] = w2[:, j]
    d_a = np.zeros((6, 6, 2))
    for (ph, pw, c), (sh, sw) in switch.items():
        d_a[sh, sw, c] += d_pool[ph, pw, c]  # max-unpooling through the switches
    d_z = d_a * (z > 0) * (d_a > 0) if mode == "guided" else np.maximum(d_a, 0)
    d_x = np.zeros((8, 8))
    for h in range(6):
        for w in range(6):
            d_x[h:h + 3, w:w + 3] += k1[..., 0, :] @ d_z[h, w]
    return d_x[..., None]


@pytest.mark.parametrize("mode", ["guided", "deconv"])
def test_guided_backprop_and_deconvnet_match_numpy(mode):
    rng = np.random.default_rng(0)
    model = _tiny_net(rng)
    images = rng.uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)
    filters = np.array([0, 1, 0, 1])
    got = filter_gradients(backprop_model(model, "readout", mode), images, filters, batch_size=3)
    want = np.stack([_reference(model, images[i], filters[i], mode) for i in range(len(images))])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.abs(got).sum() > 0


def test_the_two_rules_differ_and_leave_the_model_alone():
    rng = np.random.default_rng(0)
    model = _tiny_net(rng)
    before = [w.copy() for w in model.get_weights()]
    model.get_layer("conv").set_weights([before[0], np.array([-50.0, 0.0])])  # filter 0 dead everywhere
    images = rng.uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)
    guided = filter_gradients(backprop_model(model, "readout", "guided"), images, np.zeros(4))
    deconv = filter_gradients(backprop_model(model, "readout", "deconv"), images, np.zeros(4))
    # Read-out 0 weighs the dead channel +1 and the live one -0.8: guided backprop passes neither (dead forward,
    # negative backward); deconvnet ignores the forward pass and projects the dead channel's positive signal.
    assert np.abs(guided).max() == 0 and np.abs(deconv).max() > 0
    for i in range(4):
        np.testing.assert_allclose(deconv[i], _reference(model, images[i], 0, "deconv"), rtol=1e-4, atol=1e-5)
    model.get_layer("conv").set_weights(before[:2])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="attribution mode"):
        backprop_model(model, "readout", "saliency")


def test_mask_energy_of_a_filter_built_for_one_region():
    """A blob detector (positive kernel, negative bias) sees only the bright blob placed inside the mask."""
    x = keras.Input((16, 16, 1))
    model = keras.Model(x, keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="conv")(x))
    model.get_layer("conv").set_weights([np.full((3, 3, 1, 1), 1 / 9), np.array([-0.5])])
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 0.2, (5, 16, 16, 1)).astype(np.float32)
    masks = np.zeros((5, 16, 16), np.uint8)
    for i in range(5):
        r, c = 2 + 2 * i, 3 + i
        images[i, r:r + 3, c:c + 3] = 1.0
        masks[i, r - 1:r + 4, c - 1:c + 4] = 255
    grads = filter_gradients(backprop_model(model, "conv", "guided"), images, np.zeros(5))
    inside = mask_shares(grads, masks)
    assert np.allclose(inside["energy_share"], 1.0)
    assert inside["pointing_hit"].all()
    np.testing.assert_allclose(inside["area_share"], 25 / 256)
    elsewhere = mask_shares(grads, np.roll(masks, 8, axis=2))  # the same areas, away from the blob
    assert np.allclose(elsewhere["energy_share"], 0.0) and not elsewhere["pointing_hit"].any()
    empty = mask_shares(grads, np.zeros_like(masks))
    assert np.isnan(empty["energy_share"]).all()
