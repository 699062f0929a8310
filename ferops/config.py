"""params.yaml -> typed, validated settings: parsed once, passed down as one object.

Every stage (DVC, Prefect, CLI) reads its settings from here and nowhere else,
so a typo in params.yaml must fail loudly - naming the key - rather than
silently fall back to a default and produce a run nobody asked for.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ParamsError(ValueError):
    """A params.yaml key is unknown, missing or of the wrong type."""


@dataclass(frozen=True)
class SynthFacsParams:
    preset: Literal["posed", "wild", "micro"] = "posed"
    n: int = 400  # samples: sequences for posed/micro, images for wild
    size: int = 48
    channels: int = 1
    format: Literal["ck+", "fer2013", "casme2", "folders"] = "ck+"
    out: str = "data/raw/synthfacs_posed"


@dataclass(frozen=True)
class DatasetParams:
    name: str = "synthfacs_posed"
    format: Literal["ck+", "fer2013", "casme2", "folders"] = "ck+"
    raw_dir: str = "data/raw/synthfacs_posed"
    processed_dir: str = "data/processed/synthfacs_posed"
    last_k: int = 3  # CK+: last K frames of each labelled sequence carry its emotion
    neutral_first_frame: bool = True
    subject_pattern: str = r"^(S\d{3})_"  # image folders: subject id from file names


@dataclass(frozen=True)
class PreprocessParams:
    image_size: int = 48
    channels: int = 1
    detect_faces: bool = False  # already-cropped data (SynthFACS, FER2013, CK+48) skips detection


@dataclass(frozen=True)
class ValidateParams:
    min_per_class: int = 10
    pixel_mean_range: tuple[float, float] = (20.0, 235.0)
    pixel_std_range: tuple[float, float] = (5.0, 110.0)


@dataclass(frozen=True)
class ModelParams:
    filters: tuple[int, ...] = (64, 128, 256)
    kernel_size: int = 5
    pool_size: int = 2
    dense_units: int = 512
    conv_dropout: float = 0.25
    dense_dropout: float = 0.5
    width: float = 1.0  # multiplies filters and dense units; < 1 for tiny test models


@dataclass(frozen=True)
class AugmentParams:
    flip: bool = True
    rotation_deg: float = 10.0
    translation: float = 0.1  # fraction of image size
    scale: float = 0.1  # zoom in/out by up to this fraction
    shear: float = 0.1  # shear factor


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    decay: float = 1e-5  # lr / (1 + decay * step), as Keras' legacy Adam `decay`
    validation_fraction: float = 0.1  # `ferops train`: subject-grouped holdout when no split column
    augment: AugmentParams = field(default_factory=AugmentParams)


@dataclass(frozen=True)
class CVParams:
    folds: int = 10
    protocol: Literal["subject", "paper"] = "subject"  # paper = frame-level stratified folds
    refit: bool = True  # train a final model on all data for the registry


@dataclass(frozen=True)
class TrackingParams:
    tracking_uri: str = "sqlite:///mlflow.db"  # MLFLOW_TRACKING_URI overrides
    artifact_root: str = "mlartifacts"
    experiment: str = "ferops"
    model_name: str = "fer-emotion"
    promote_metric: str = "cv_accuracy_mean"


@dataclass(frozen=True)
class Params:
    seed: int = 42
    synthfacs: SynthFacsParams = field(default_factory=SynthFacsParams)
    dataset: DatasetParams = field(default_factory=DatasetParams)
    preprocess: PreprocessParams = field(default_factory=PreprocessParams)
    validate: ValidateParams = field(default_factory=ValidateParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    cv: CVParams = field(default_factory=CVParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ParamsError(f"{key}: {value!r} is not one of {list(typing.get_args(hint))}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            try:
                return _coerce(value, arm, key)
            except ParamsError:
                continue
        raise ParamsError(f"{key}: {value!r} does not match {hint}")
    if hint is type(None):
        if value is not None:
            raise ParamsError(f"{key}: expected null, got {value!r}")
        return None
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParamsError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {value!r}")
        return value
    raise ParamsError(f"{key}: unsupported type {hint}")  # pragma: no cover - schema bug


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = prefix or "top level"
        raise ParamsError(f"unknown key {prefix + '.' if prefix else ''}{unknown[0]} in {where}; allowed: {sorted(names)}")
    kwargs = {name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name) for name, value in data.items()}
    return cls(**kwargs)


def parse_params(data: dict) -> Params:
    """Validate a params mapping against the schema above."""
    return _build(Params, data, "")


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return parse_params(data)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value, for MLflow params and run comparison in the UI."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, key + "."))
        else:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def replace(params: Any, **changes: Any) -> Any:
    """Copy with dotted-key overrides: replace(p, **{"train.epochs": 1})."""
    nested: dict[str, dict] = {}
    direct = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = replace(getattr(params, head), **sub)
    return dataclasses.replace(params, **direct)
