"""Models built from params: the paper CNN and its task heads."""

from ferops.models.cnn import LAST_CONV, build_cnn

__all__ = ["LAST_CONV", "build_cnn"]
