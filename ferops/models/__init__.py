"""Models built from params: the paper CNN backbone and one head per task."""

from ferops.models.cnn import (
    CONV_LAYERS,
    FEATURES,
    LAST_CONV,
    backbone,
    build_cnn,
    build_model,
    feature_extractor,
    replace_head,
)
from ferops.models.heads import INTENSITY_MAX, Head, attach_head, float32_outputs

__all__ = [
    "CONV_LAYERS", "FEATURES", "INTENSITY_MAX", "LAST_CONV", "Head", "attach_head", "backbone", "build_cnn",
    "build_model", "feature_extractor", "float32_outputs", "replace_head",
]
