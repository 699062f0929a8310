"""params.yaml -> typed, validated settings: parsed once, passed down as one object.

Every stage (DVC, Prefect, CLI) reads its settings from here and nowhere else,
so a typo in params.yaml must fail loudly - naming the key - rather than
silently fall back to a default and produce a run nobody asked for.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from ferops.errors import FeropsError, shown, shown_key


class ParamsError(FeropsError, ValueError):
    """A params.yaml key is unknown, missing or of the wrong type."""


def rule(ge: float | None = None, gt: float | None = None, lt: float | None = None, le: float | None = None,
         ascending: bool = False) -> Any:
    """A required field with a range check: no default, so a key missing from params.yaml fails by name."""
    return field(metadata={"ge": ge, "gt": gt, "lt": lt, "le": le, "ascending": ascending})


# 4x the paper CNN is ~90M parameters; beyond that a typo (1e9) would only end in an out-of-memory traceback.
MAX_WIDTH = 4.0


@dataclass(frozen=True)
class SynthFacsParams:
    preset: Literal["posed", "wild", "micro"]
    n: int = rule(ge=1)  # samples: sequences for posed/micro, images for wild
    size: int = rule(ge=16)
    channels: Literal[1, 3]
    format: Literal["ck+", "fer2013", "casme2", "folders"]
    out: str


@dataclass(frozen=True)
class DatasetParams:
    name: str
    format: Literal["ck+", "fer2013", "casme2", "folders"]
    raw_dir: str
    processed_dir: str
    last_k: int = rule(ge=1)  # CK+: last K frames of each labelled sequence carry its emotion
    neutral_first_frame: bool
    subject_pattern: str | None  # image folders: subject id from file names; null = subjects unknown (image-level)


@dataclass(frozen=True)
class PreprocessParams:
    image_size: int = rule(ge=16)
    channels: Literal[1, 3]
    detect_faces: bool  # already-cropped data (SynthFACS, FER2013, CK+48) skips detection


@dataclass(frozen=True)
class ValidateParams:
    min_per_class: int = rule(ge=1)
    pixel_mean_range: tuple[float, float] = rule(ascending=True)
    pixel_std_range: tuple[float, float] = rule(ascending=True)
    on_fail: Literal["stop", "quarantine"]  # quarantine: drop offending images into rejects.csv and go on
    # under quarantine, exact copies within the held-out (test) splits: keep = list them in flagged.csv and keep
    # them, so the standard test split stays the one literature figures are quoted on; drop = remove all but one
    test_duplicates: Literal["keep", "drop"]


@dataclass(frozen=True)
class ModelParams:
    filters: tuple[int, ...] = rule(ge=1)
    kernel_size: int = rule(ge=1)
    pool_size: int = rule(ge=1)
    dense_units: int = rule(ge=1)
    conv_dropout: float = rule(ge=0.0, lt=1.0)
    dense_dropout: float = rule(ge=0.0, lt=1.0)
    width: float = rule(gt=0.0, le=MAX_WIDTH)  # multiplies filters and dense units; < 1 for tiny test models


@dataclass(frozen=True)
class AugmentParams:
    flip: bool
    rotation_deg: float = rule(ge=0.0, le=180.0)
    translation: float = rule(ge=0.0, lt=1.0)  # fraction of image size
    scale: float = rule(ge=0.0, lt=1.0)  # zoom in/out by up to this fraction
    shear: float = rule(ge=0.0, lt=1.0)  # shear factor


@dataclass(frozen=True)
class TrainParams:
    epochs: int = rule(ge=1)
    batch_size: int = rule(ge=1)
    learning_rate: float = rule(gt=0.0)
    decay: float = rule(ge=0.0)  # lr / (1 + decay * step), as Keras' legacy Adam `decay`
    validation_fraction: float = rule(gt=0.0, lt=1.0)  # share of training subjects held out for decisions
    augment: AugmentParams
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]  # auto: ferops.train.precision.choose
    deterministic: bool  # TF op determinism: identical reruns on CPU; off is faster on GPU (the run records which)
    system_metrics: bool  # MLflow system metrics (CPU, memory, GPU via nvidia-ml-py) on every training run


@dataclass(frozen=True)
class CVParams:
    folds: int = rule(ge=2)  # and <= subjects: checked where the data is known (ferops.train.folds)
    protocol: Literal["subject", "paper"]  # paper = frame-level stratified folds
    refit: bool  # train a final model on all data for the registry


@dataclass(frozen=True)
class DomainParams:
    """One extra SynthFACS dataset, rendered straight to the processed form (exact AUs on every frame)."""
    preset: Literal["posed", "wild", "micro", "au", "webcam"]
    n: int = rule(ge=1)  # sequences (posed, micro) or images (wild, au, webcam)
    frames: tuple[int, int] | None = rule(ge=3, ascending=True)  # sequence length (min, max); null = the preset's
    size: int = rule(ge=16)
    channels: Literal[1, 3]
    masks: bool  # AU region masks (the filter analysis' mask-energy test needs them)
    out: str


@dataclass(frozen=True)
class SparsityParams:
    l1: float = rule(ge=0.0)
    l2: float = rule(ge=0.0)


@dataclass(frozen=True)
class AUParams:
    data: str  # a processed dataset with AU labels (SynthFACS `au` domain, or your processed CK+)
    modes: tuple[Literal["all_at_once", "one_vs_all"], ...]
    one_vs_all_aus: int = rule(ge=0)  # one_vs_all: a model for each of this many commonest AUs (0 = every AU)
    min_prevalence: float = rule(ge=0.0, lt=1.0)  # AUs rarer than this are reported, not learned
    sparsity: SparsityParams  # L1 + L2 on the output layer's activations (the paper's sparsity prior)
    folds: int = rule(ge=2)
    epochs: int = rule(ge=1)
    width: float = rule(gt=0.0, le=MAX_WIDTH)  # model.width for this experiment
    batch_size: int = rule(ge=1)
    augment: bool  # train.augment on AU training (flips swap L/R AUs); off learns faster in few epochs
    intensity_dense_dropout: float = rule(ge=0.0, lt=1.0)  # model.dense_dropout of the intensity regression model
    refit: bool  # train the all-at-once presence model on all subjects and register it
    model_name: str


@dataclass(frozen=True)
class TransferParams:
    datasets: tuple[str, ...]  # processed dataset dirs: every ordered pair is a cell
    folds: int = rule(ge=2)  # folds over each target dataset's subjects (image-level where unknown)
    epochs: int = rule(ge=1)  # models from scratch: source models, the diagonal, the curve's scratch points
    finetune_epochs: int = rule(ge=1)  # models that start from a source: frozen and fine-tuned cells and points
    width: float = rule(gt=0.0, le=MAX_WIDTH)
    finetune_lr_scale: float = rule(gt=0.0, le=1.0)  # fine-tuning learning rate = train.learning_rate x this
    fractions: tuple[float, ...] = rule(gt=0.0, le=1.0, ascending=True)  # curve: shares of a fold's training subjects


@dataclass(frozen=True)
class CrossTaskParams:
    fractions: tuple[float, ...] = rule(gt=0.0, le=1.0, ascending=True)  # shares of training subjects
    test_fraction: float = rule(gt=0.0, lt=1.0)  # AU subjects held out for scoring
    epochs: int = rule(ge=1)
    finetune_lr_scale: float = rule(gt=0.0, le=1.0)


@dataclass(frozen=True)
class MicroSynthParams:
    n: int = rule(ge=1)  # clips (CASME II has 255)
    seed: int


@dataclass(frozen=True)
class MicroDataParams:
    format: Literal["synthfacs", "casme2"]  # synthfacs: the micro preset rendered in memory; casme2: raw_dir
    raw_dir: str  # casme2: folder holding CASME2_RAW_selected/ and the coding sheet
    detect_faces: bool  # one face crop per clip (on its onset frame); SynthFACS comes cropped
    synthfacs: MicroSynthParams


@dataclass(frozen=True)
class MicroClipParams:
    frames: Literal["key", "span"]  # key: first, onset, apex, offset, last (the paper); span: `length` onset->offset
    length: int = rule(ge=2)  # time steps T (key: must be 5)
    size: int = rule(ge=16)
    channels: Literal[1, 3]


@dataclass(frozen=True)
class MicroCNNParams:
    width: float = rule(gt=0.0, le=MAX_WIDTH)  # model.width for the micro CNN
    pretrain_epochs: int = rule(ge=0)  # once, on the pipeline's emotion dataset (dataset.processed_dir); 0 = none
    epochs: int = rule(ge=0)  # per fold, on the selected frames of the training subjects; 0 = skip


@dataclass(frozen=True)
class MicroLSTMParams:
    units: int = rule(ge=1)
    dropout: float = rule(ge=0.0, lt=1.0)
    recurrent_dropout: float = rule(ge=0.0, lt=1.0)
    inputs: Literal["features", "change", "both"]  # per step: frame features, their change since the first frame, both
    epochs: int = rule(ge=1)  # backbone frozen
    finetune_epochs: int = rule(ge=0)  # then the backbone trainable too; 0 = skip


@dataclass(frozen=True)
class LBPTopParams:
    length: int = rule(ge=3)  # frames spread over onset->offset
    radius: int = rule(ge=1)  # spatial (x, y) radius; P = 8 neighbours
    time_radius: int = rule(ge=1)
    blocks: int = rule(ge=1)  # blocks x blocks spatial grid
    svm_c: float = rule(gt=0.0)  # LinearSVC C


@dataclass(frozen=True)
class MicroParams:
    data: MicroDataParams
    clip: MicroClipParams
    cnn: MicroCNNParams
    lstm: MicroLSTMParams
    lbp_top: LBPTopParams
    balance: bool  # class weights n / (K n_k) in every model's loss (UF1 and UAR weigh each class alike)
    register: bool  # train the CNN+LSTM on every subject and register it
    model_name: str


@dataclass(frozen=True)
class AnalysisParams:
    """Filter <-> Action Unit analysis (ferops.experiments.analyze)."""
    probe_data: str  # AU probe set: processed SynthFACS `au` domain with masks (AUs independent of emotion)
    layer: str  # conv layer whose filters are matched to AUs (the paper: the last, conv3)
    top_n: int = rule(ge=1)  # top images per filter for P(j,u) (the paper: a small N)
    threshold: float = rule(gt=0.0, le=1.0)  # a second, configurable match threshold (the paper's is P = 1)
    epsilon: float = rule(ge=0.0)  # dead filter: spatial max never above this on any image
    permutations: int = rule(ge=1)  # shuffles of AU labels within emotion (co-occurrence baseline)
    selective_auroc: float = rule(ge=0.5, le=1.0)  # probe AUROC from which a matched pair counts as selective
    energy_images: int = rule(ge=1)  # probe images per (filter, AU) pair for the mask-energy test
    top_k: int = rule(ge=1)  # top images per filter in the filter-image figure
    max_filters: int = rule(ge=1)  # filters (rows) in that figure
    batch_size: int = rule(ge=1)


@dataclass(frozen=True)
class ServingParams:
    """Registry models as a face-analysis tool: `ferops predict`, `ferops package` and the fer-pipeline pyfunc."""
    model_name: str  # the registered pyfunc bundling detector, crop and the current champions (ferops package)
    detector: Literal["haar"]  # face detector (OpenCV's Haar cascades ship with opencv); pluggable: ferops.serving
    detect_faces: bool  # false: every image is already one face crop (as SynthFACS, FER2013, CK+48): resize only
    detect_width: int = rule(ge=0)  # detection runs on frames shrunk to this width, boxes mapped back; 0 = full size
    max_faces: int = rule(ge=1)  # largest faces kept per image or frame
    max_pixels: int = rule(ge=1)  # per served image, read from its header before decoding (REST: larger is a 400)
    batch_size: int = rule(ge=1)  # faces per forward pass, at most
    window: int = rule(ge=1)  # frames whose faces are batched into one forward pass
    queue: int = rule(ge=1)  # frames decoded and detected ahead (bounded: memory stays flat in video length)
    stride: int = rule(ge=1)  # video: score every Nth frame


# Metrics the emotion CV writes that a registry may rank by (higher is better).
PROMOTE_METRICS = ("cv_accuracy_mean", "cv_f1_macro")


@dataclass(frozen=True)
class TrackingParams:
    tracking_uri: str  # MLFLOW_TRACKING_URI overrides
    artifact_root: str
    experiment: str
    model_name: str
    promote_metric: Literal[PROMOTE_METRICS]  # type: ignore[valid-type]
    ui_url: str | None = None  # the MLflow UI's address for links; null: the server's own, or `mlflow ui`'s for a file


@dataclass(frozen=True)
class RunnerParams:
    """Where independent jobs (CV folds, LOSO subjects, transfer pairs, trials) run: ferops.runners."""
    kind: Literal["local", "processes", "dask"]  # in this process | a process pool | a Dask cluster
    workers: int = rule(ge=1)  # processes: pool size; dask without address: LocalCluster worker processes
    address: str | None  # dask: scheduler address (tcp://host:8786); null = a LocalCluster started here


@dataclass(frozen=True)
class SearchDim:
    """One tuned setting, written compactly in params.yaml: [float, low, high], [float, low, high, log],
    [int, low, high] or [choice, a, b, ...]. The key it tunes is checked against the schema in load_params."""
    kind: Literal["float", "int", "choice"]
    low: float | None
    high: float | None
    log: bool
    choices: tuple | None

    @classmethod
    def parse_params(cls, value: Any, key: str) -> "SearchDim":
        if not isinstance(value, list) or not value or value[0] not in ("float", "int", "choice"):
            raise ParamsError(f"{key}: expected [float|int, low, high(, log)] or [choice, a, b, ...], got {shown(value)}")
        kind, *rest = value
        if kind == "choice":
            if len(rest) < 2:
                raise ParamsError(f"{key}: a choice needs at least two values, got {shown(rest)}")
            return cls(kind, None, None, False, tuple(rest))
        log = rest[2:] == ["log"]
        if len(rest) not in (2, 3) or (len(rest) == 3 and not log):
            raise ParamsError(f"{key}: expected [{kind}, low, high] or [{kind}, low, high, log], got {shown(value)}")
        low, high = (_coerce(v, int if kind == "int" else float, key) for v in rest[:2])
        if not low < high or (log and low <= 0):
            raise ParamsError(f"{key}: need low < high{' and low > 0 (log scale)' if log else ''}, got {shown(value)}")
        return cls(kind, low, high, log, None)

    def bounds(self) -> tuple:
        """The values a trial can take at the edges (checked against the schema once, at load time)."""
        return self.choices if self.kind == "choice" else (self.low, self.high)


@dataclass(frozen=True)
class PrunerParams:
    kind: Literal["median", "hyperband", "none"]
    startup_trials: int = rule(ge=0)  # median: trials that complete before any is pruned
    warmup_steps: int = rule(ge=0)  # median: epochs a trial runs before it can be pruned


@dataclass(frozen=True)
class TuneParams:
    enabled: bool  # false: `ferops tune` writes an empty overlay and cv uses params.yaml as is
    trials: int = rule(ge=1)  # per outer CV fold: complete + pruned trials
    inner_folds: int = rule(ge=2)  # subject-independent splits of each outer fold's training subjects
    pruner: PrunerParams
    storage: str  # sqlite:///optuna.db | journal:optuna.journal (several processes) | postgresql+psycopg2://...
    study: str  # study-name prefix; the full name adds the dataset, a settings hash and the outer fold
    workers: int = rule(ge=1)  # worker processes on one study (`ferops tune --workers` overrides)
    heartbeat_s: int = rule(ge=1)  # RDB storages: a trial silent for 3x this is failed and retried
    space: dict[str, SearchDim]
    enqueue: tuple[dict[str, int | float | str], ...]  # settings tried first (after params.yaml's own), e.g. known-good ones


@dataclass(frozen=True)
class Params:
    seed: int
    synthfacs: SynthFacsParams
    dataset: DatasetParams
    preprocess: PreprocessParams
    validate: ValidateParams
    model: ModelParams
    train: TrainParams
    cv: CVParams
    tracking: TrackingParams
    runner: RunnerParams
    domains: dict[str, DomainParams]
    au: AUParams
    transfer: TransferParams
    cross_task: CrossTaskParams
    micro: MicroParams
    analysis: AnalysisParams
    serving: ServingParams
    tune: TuneParams


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _check_range(value: Any, meta: Mapping[str, Any], key: str) -> None:
    if value is None:
        return
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        for op, bound, ok in (("ge", ">=", lambda a, b: a >= b), ("gt", ">", lambda a, b: a > b),
                              ("le", "<=", lambda a, b: a <= b), ("lt", "<", lambda a, b: a < b)):
            limit = meta.get(op)
            if limit is not None and not ok(v, limit):
                raise ParamsError(f"{key}: {shown(v)} must be {bound} {limit}")
    if meta.get("ascending") and list(values) != sorted(values):
        raise ParamsError(f"{key}: {shown(list(values))} must be [low, high]")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if hasattr(hint, "parse_params"):  # a compact notation with its own parser (SearchDim)
        return hint.parse_params(value, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ParamsError(f"{key}: {shown(value)} is not one of {list(typing.get_args(hint))}")
        return value
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {type(value).__name__} {shown(value)}")
        return {_coerce(k, key_type, f"{key} key"): _coerce(v, value_type, f"{key}.{shown_key(k)}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            try:
                return _coerce(value, arm, key)
            except ParamsError:
                continue
        raise ParamsError(f"{key}: {shown(value)} does not match {hint}")
    if hint is type(None):
        if value is not None:
            raise ParamsError(f"{key}: expected null, got {shown(value)}")
        return None
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {type(value).__name__} {shown(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParamsError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true/false, got {shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {shown(value)}")
        return value
    if hint is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads `1e-3` (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {shown(value)}")
        if not math.isfinite(value):  # .inf / .nan pass every range check and poison training silently
            raise ParamsError(f"{key}: {shown(value)} must be a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {shown(value)}")
        return value
    raise ParamsError(f"{key}: unsupported type {hint}")  # pragma: no cover - schema bug


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{prefix or 'params'}: expected a mapping, got {shown(data)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = prefix or "top level"
        key = shown_key(unknown[0], 40)
        close = difflib.get_close_matches(key, names, 1)
        hint = f"did you mean {close[0]}?" if close else f"allowed: {shown(sorted(names), 60)}"
        raise ParamsError(f"unknown key {prefix + '.' if prefix else ''}{key} in {where}; {hint}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in data]
    if missing:
        raise ParamsError(f"missing key {prefix + '.' if prefix else ''}{missing[0]}; every setting lives in params.yaml")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        kwargs[f.name] = _coerce(data[f.name], hints[f.name], key)
        _check_range(kwargs[f.name], f.metadata, key)
    return cls(**kwargs)


def parse_params(data: dict) -> Params:
    """Validate a complete params mapping against the schema above."""
    return _build(Params, data, "")


def overlay(base: dict, changes: Mapping) -> dict:
    """`base` with `changes` merged in section by section (a params overlay file, or tiny test settings)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = overlay(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def nest(dotted: Mapping[str, Any]) -> dict:
    """{"train.epochs": 2} -> {"train": {"epochs": 2}}: dotted overrides (flows, sweeps) become an overlay."""
    out: dict = {}
    for key, value in dotted.items():
        *heads, last = key.split(".")
        node = out
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return out


def read_params_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer past Python's 4300-digit limit
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or " ".join(str(exc)[:2000].split())
        raise ParamsError(f"{path}: not valid YAML{where}: {shown_key(what)}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_params(path: str | Path = "params.yaml", changes: Mapping | None = None) -> Params:
    """params.yaml (plus optional section overrides) -> Params; errors name the file and the key."""
    data = overlay(read_params_file(path), changes or {})
    try:
        params = parse_params(data)
        check_search_space(params, data)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
    return params


def load_overrides(path: str | Path, params_path: str | Path = "params.yaml") -> dict[str, Any]:
    """A profile of dotted keys (params.paper.yaml) -> {key: value}, each key a setting params.yaml has and the
    whole laid over params.yaml a valid Params: `dvc exp run -S` would otherwise add a key ferops then refuses."""
    overrides = read_params_file(path)
    known = set(flatten(load_params(params_path)))
    for key in overrides:
        if key not in known:
            raise ParamsError(f"{path}: {shown_key(str(key))} is not a params.yaml setting (dotted keys, e.g. cv.folds)")
    try:
        load_params(params_path, nest(overrides))
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
    return overrides


def check_search_space(params: Params, data: dict) -> None:
    """Every tuned key names a real setting, and both ends of its range are values that setting accepts."""
    for key, dim in params.tune.space.items():
        if key.startswith("tune."):
            raise ParamsError(f"tune.space.{key}: the tuner's own settings cannot be tuned")
        for value in dim.bounds():
            try:
                parse_params(overlay(data, nest({key: value})))
            except ParamsError as exc:
                raise ParamsError(f"tune.space.{shown_key(key)}: {shown(value)} is not a valid value here ({exc})") from None
    for i, settings in enumerate(params.tune.enqueue):
        for key, value in settings.items():
            dim = params.tune.space.get(key)
            inside = dim is not None and (value in dim.choices if dim.kind == "choice" else dim.low <= value <= dim.high)
            if not inside:
                raise ParamsError(f"tune.enqueue[{i}].{shown_key(key)}: {shown(value)} is not in tune.space "
                                  f"({'no such key' if dim is None else list(dim.bounds())})")


def flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value, for MLflow params and run comparison in the UI."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, key + "."))
        elif isinstance(value, dict):
            for name, item in value.items():
                out.update(flatten(item, f"{key}.{name}.") if dataclasses.is_dataclass(item) else {f"{key}.{name}": item})
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
