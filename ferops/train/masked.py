"""Losses and metrics that skip unknown labels (NaN) instead of reading them as 0.

Real AU coding is sparse: CK+ codes the apex frame of some sequences, CASME II
codes no intensities, and pooled datasets code different AU sets. Each is an
average over the known entries only, so an uncoded AU neither pulls a
prediction towards "absent" nor dilutes the number a reader compares across
datasets. Registered with Keras so compiled AU models save and load
(`import ferops.train.masked` before `keras.models.load_model`).
"""

from __future__ import annotations

import keras
from keras import ops


def _known(y_true):
    """(mask of known entries, targets with unknowns zeroed so every term stays finite)."""
    known = ops.logical_not(ops.isnan(y_true))
    return known, ops.where(known, y_true, ops.zeros_like(y_true))


def _known_mean_terms(values, known):
    """Per-entry terms whose `sum_over_batch_size` reduction is the mean over known entries.

    Keras divides the summed loss by the number of entries; scaling known
    entries by entries/known turns that into a mean over the known ones, the
    same weighting Keras applies to its own masked losses.
    """
    weight = ops.cast(known, values.dtype)
    total = ops.cast(ops.size(values), values.dtype)
    return values * weight * ops.divide_no_nan(total, ops.sum(weight))


@keras.saving.register_keras_serializable(package="ferops")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy over the known entries of a multi-label target (AU presence)."""

    def __init__(self, name="masked_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        known, y_true = _known(y_true)
        return _known_mean_terms(ops.binary_crossentropy(y_true, y_pred), known)


@keras.saving.register_keras_serializable(package="ferops")
class MaskedMeanSquaredError(keras.losses.Loss):
    """Squared error over the known entries (AU intensity)."""

    def __init__(self, name="masked_mean_squared_error", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        known, y_true = _known(y_true)
        return _known_mean_terms(ops.square(y_pred - y_true), known)


class _MaskedMean(keras.metrics.Metric):
    """Epoch mean of a per-entry score over known entries (exact, not a mean of batch means)."""

    def __init__(self, name, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def score(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, self.dtype)
        y_pred = ops.cast(y_pred, self.dtype)
        known, y_true = _known(y_true)
        weight = ops.cast(known, self.dtype)
        self.total.assign_add(ops.sum(self.score(y_true, y_pred) * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)


@keras.saving.register_keras_serializable(package="ferops")
class MaskedBinaryAccuracy(_MaskedMean):
    """Share of known AU entries whose sigmoid output falls on the right side of 0.5."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def score(self, y_true, y_pred):
        return ops.cast(ops.equal(y_pred > 0.5, y_true > 0.5), self.dtype)


@keras.saving.register_keras_serializable(package="ferops")
class MaskedMeanAbsoluteError(_MaskedMean):
    """Mean absolute intensity error over known entries, in FACS grades."""

    def __init__(self, name="mae", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def score(self, y_true, y_pred):
        return ops.abs(y_pred - y_true)
