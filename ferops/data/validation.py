"""Refuse bad data before any GPU hour is spent on it.

Each check is a Great Expectations (1.x) expectation run on a small derived
table (manifest, per-image stats, per-class counts, per-subject folds, hashes)
so that a failure comes back as GE's own record of which rows broke it; the
suites live here as code, in an ephemeral context, so there is no GE project
directory to drift from the code. The report names the offending rows by
manifest `path` (or class / subject) because "3 images too dark" is useless
without knowing which three. Logging the report to MLflow is the caller's job.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.splits import split_sides
from ferops.data.vocab import CANONICAL
from ferops.io import atomic_file

# GE is imported lazily (it takes seconds); this must be set before it is.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

SAMPLE = 20  # unexpected rows kept per expectation; the count is always exact
_SHOWN = 5  # of those, how many the one-line summary names

_lock = threading.Lock()
_batch_definition = None


def _batches():
    """One ephemeral context per process: creating it (and importing GE) is the slow part."""
    global _batch_definition
    with _lock:
        if _batch_definition is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                progress_bars=ProgressBarsConfig(globally=False),
                analytics_enabled=False,
            )
            context = gx.get_context(mode="ephemeral", project_config=config)
            asset = context.data_sources.add_pandas("ferops_validation").add_dataframe_asset("table")
            _batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        return _batch_definition


@dataclass
class _Check:
    """An expectation plus how to say, in a summary line, what it found."""

    name: str
    expectation: Any
    column: str
    expected: str
    describe: Callable[[dict], str]  # unexpected row -> "a/1.png (mean 3.1)"
    observed_ok: str = ""
    # Whole-failure wording where rows alone mislead (a leak is two rows, one per side).
    summarize: Callable[[list[dict], int], str] | None = None


@dataclass
class ValidationReport:
    success: bool
    results: list[dict]
    dataset: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # context the ✓/✗ lines cannot carry (e.g. what was quarantined)

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if not r["success"]]

    def summary(self) -> str:
        d = self.dataset
        shape = "x".join(map(str, d.get("image_shape", ())))
        verdict = "passed" if self.success else f"FAILED ({len(self.failures)} of {len(self.results)} expectations)"
        level = "" if d.get("subjects_known", True) else ", image-level (subjects unknown)"
        lines = [f"data validation of {d.get('name', '?')!r} ({d.get('n', '?')} images {shape}{level}): {verdict}"]
        width = max((len(r["name"]) for r in self.results), default=0)
        for r in self.results:
            mark = "✓" if r["success"] else "✗"
            lines.append(f"  {mark} {r['name'].ljust(width)}  {r['observed']}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"success": self.success, "dataset": self.dataset, "results": self.results, "notes": self.notes}

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, default=_jsonable, ensure_ascii=False))
        return path


class ValidationError(Exception):
    """Raised instead of training on data that failed validation; carries the report."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report


def check(report: ValidationReport) -> ValidationReport:
    """Pass the report through, or stop the pipeline with its summary."""
    if not report.success:
        raise ValidationError(report)
    return report


def validate_dataset(
    dataset: Dataset,
    *,
    image_shape: tuple[int, int, int],
    classes: tuple[str, ...] | None = None,
    min_per_class: int = 1,
    pixel_mean_range: tuple[float, float] = (20.0, 235.0),
    pixel_std_range: tuple[float, float] = (5.0, 110.0),
    folds: np.ndarray | None = None,
    raise_on_failure: bool = False,
) -> ValidationReport:
    """Run every suite on `dataset`; `folds[i]` is the test fold of row i (subject-independent CV)."""
    classes = tuple(classes if classes is not None else dataset.classes)
    manifest = dataset.manifest.reset_index(drop=True)
    paths = manifest["path"].astype(str).to_numpy()
    tables: list[tuple[pd.DataFrame, list[str], list[_Check]]] = [
        _vocabulary_checks(classes),
        _label_checks(manifest, paths, classes),
        _count_checks(manifest, classes, min_per_class),
        _shape_checks(dataset.images, image_shape),
        _pixel_checks(dataset.images, paths, pixel_mean_range, pixel_std_range),
        _leak_checks(dataset.images, manifest, paths),
    ]
    if folds is not None:
        tables.append(_fold_checks(manifest, folds, dataset.subjects_known))

    results = [r for frame, index, checks in tables for r in _run(frame, index, checks)]
    report = ValidationReport(
        success=all(r["success"] for r in results),
        results=results,
        dataset={
            "name": dataset.name,
            "n": len(dataset),
            "image_shape": list(dataset.images.shape[1:]),
            "dtype": str(dataset.images.dtype),
            "classes": list(classes),
            "subjects_known": dataset.subjects_known,
        },
    )
    return check(report) if raise_on_failure else report


# --- the derived tables and their expectations ------------------------------


def _vocabulary_checks(classes):
    """Class names must be canonical, or cross-dataset results stop being comparable."""
    from great_expectations import expectations as E

    frame = pd.DataFrame({"class": pd.Series(classes, dtype=object)})
    return frame, ["class"], [
        _Check("classes are canonical names", E.ExpectColumnValuesToBeInSet(column="class", value_set=list(CANONICAL)),
               "class", "⊆ ferops.data.vocab.CANONICAL", lambda r: repr(r["class"])),
    ]


def _label_checks(manifest, paths, classes):
    from great_expectations import expectations as E

    names = manifest["label_name"].astype(object).where(manifest["label_name"].notna(), None)
    labels = pd.to_numeric(manifest["label"], errors="coerce")
    valid = labels.notna() & labels.between(0, len(classes) - 1) & (labels % 1 == 0)
    named = [classes[int(v)] if ok else None for v, ok in zip(labels, valid)]
    frame = pd.DataFrame({
        "path": paths, "label_name": names, "label": labels,
        "class_of_label": pd.Series(named, dtype=object),
    })
    top = len(classes) - 1
    return frame, ["path"], [
        _Check(f"label_name in classes ({len(classes)})",
               E.ExpectColumnValuesToBeInSet(column="label_name", value_set=list(classes)),
               "label_name", f"⊆ {list(classes)}", lambda r: f"{r['path']}: {r['label_name']!r}"),
        _Check("label_name not missing", E.ExpectColumnValuesToNotBeNull(column="label_name"),
               "label_name", "no nulls", lambda r: r["path"]),
        _Check("label not missing (or not a number)", E.ExpectColumnValuesToNotBeNull(column="label"),
               "label", "no nulls", lambda r: r["path"]),
        _Check(f"label in 0..{top}", E.ExpectColumnValuesToBeBetween(column="label", min_value=0, max_value=top),
               "label", f"0..{top}", lambda r: f"{r['path']}: {r['label']:g}"),
        _Check("label indexes label_name",
               E.ExpectColumnPairValuesToBeEqual(column_A="class_of_label", column_B="label_name",
                                                 ignore_row_if="either_value_is_missing"),
               "label", "classes[label] == label_name",
               lambda r: f"{r['path']}: classes[label]={r['class_of_label']!r} but label_name={r['label_name']!r}"),
    ]


def _count_checks(manifest, classes, min_per_class):
    """Every class must be there: a class absent from training silently shrinks the head's useful outputs."""
    from great_expectations import expectations as E

    counts = manifest["label_name"].astype(object).value_counts()
    frame = pd.DataFrame({"class": pd.Series(classes, dtype=object),
                          "count": [int(counts.get(c, 0)) for c in classes]})
    ok = f"min {frame['count'].min()} ({frame.loc[frame['count'].idxmin(), 'class']!r})" if len(frame) else "no classes"
    return frame, ["class"], [
        _Check(f"per-class count >= {min_per_class}",
               E.ExpectColumnValuesToBeBetween(column="count", min_value=min_per_class),
               "count", f">= {min_per_class}", lambda r: f"{r['class']!r} has {r['count']}", ok),
    ]


def _shape_checks(images, image_shape):
    """A 48x48 model fed 96x96 crops fails late and obscurely; say it here instead."""
    from great_expectations import expectations as E

    h, w, c = image_shape
    observed = list(images.shape[1:]) + [None] * (3 - len(images.shape[1:]))
    frame = pd.DataFrame({
        "property": ["height", "width", "channels", "dtype"],
        "observed": [str(v) for v in observed[:3]] + [str(images.dtype)],
        "expected": [str(h), str(w), str(c), "uint8"],
    })
    return frame, ["property"], [
        _Check(f"image shape = {h}x{w}x{c} uint8",
               E.ExpectColumnPairValuesToBeEqual(column_A="observed", column_B="expected"),
               "images", f"{h}x{w}x{c} uint8",
               lambda r: f"{r['property']} {r['observed']} (expected {r['expected']})",
               f"{'x'.join(map(str, images.shape[1:]))} {images.dtype}"),
    ]


def pixel_stats(images: np.ndarray, chunk_elements: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """Per-image mean/std in float32 chunks, so 35k faces (or an mmap) never become one float64 copy."""
    n = len(images)
    flat = images.reshape(n, -1) if n else images.reshape(0, 1)
    mean = np.empty(n, np.float64)
    std = np.empty(n, np.float64)
    step = max(1, chunk_elements // max(1, flat.shape[1]))
    for start in range(0, n, step):
        block = flat[start:start + step].astype(np.float32)  # always a copy: centred in place below
        m = block.mean(axis=1, dtype=np.float64)
        mean[start:start + step] = m
        block -= m[:, None].astype(np.float32)  # centre first: E[x^2]-m^2 in float32 would swamp a flat image's std
        std[start:start + step] = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64) / block.shape[1])
    return mean, std


def _pixel_checks(images, paths, mean_range, std_range):
    """Black frames, blown-out frames and flat fills are decoding failures, not faces."""
    from great_expectations import expectations as E

    mean, std = pixel_stats(images)
    frame = pd.DataFrame({"path": paths, "pixel_mean": mean, "pixel_std": std})
    (m0, m1), (s0, s1) = mean_range, std_range
    return frame, ["path"], [
        _Check(f"pixel mean in [{m0:g}, {m1:g}]",
               E.ExpectColumnValuesToBeBetween(column="pixel_mean", min_value=m0, max_value=m1, mostly=1.0),
               "pixel_mean", f"[{m0:g}, {m1:g}]", lambda r: f"{r['path']} (mean {r['pixel_mean']:.1f})",
               _range(mean)),
        _Check(f"pixel std in [{s0:g}, {s1:g}]",
               E.ExpectColumnValuesToBeBetween(column="pixel_std", min_value=s0, max_value=s1, mostly=1.0),
               "pixel_std", f"[{s0:g}, {s1:g}]", lambda r: f"{r['path']} (std {r['pixel_std']:.1f})",
               _range(std)),
    ]


def image_hashes(images: np.ndarray, rows: np.ndarray) -> list[str]:
    """Content hash of each listed image: equal hashes are exact pixel copies."""
    return [hashlib.blake2b(np.ascontiguousarray(images[i]).tobytes(), digest_size=16).hexdigest() for i in rows]


def _leak_checks(images, manifest, paths):
    """An image in both train and test turns memorisation into accuracy (FER2013 has such copies).

    Table: one row per (content hash, side) holding that side's paths; a hash
    that is not unique in it is on both sides. Splits outside splits.TRAIN_SPLITS and
    HELD_OUT_SPLITS (e.g. "all" for cross-validated sets) are not compared.
    """
    from great_expectations import expectations as E

    side = split_sides(manifest)
    rows = np.flatnonzero(side != "")
    if len(set(side[rows])) < 2:
        rows = rows[:0]  # one side only: nothing can leak, skip the hashing
    digest = image_hashes(images, rows)
    table = pd.DataFrame({"hash": digest, "side": side[rows], "path": paths[rows]}, dtype=object)
    grouped = table.groupby(["hash", "side"], sort=True)["path"]
    frame = pd.DataFrame([(h, s, ", ".join(p)) for (h, s), p in grouped], columns=["hash", "side", "paths"], dtype=object)
    return frame, ["hash", "side", "paths"], [
        _Check("no image in both train and test", E.ExpectColumnValuesToBeUnique(column="hash"),
               "hash", "train ∩ test = ∅", lambda r: f"{r['paths']} ({r['side']})",
               f"{int((side == 'train').sum())} train vs {int((side == 'test').sum())} test images disjoint",
               _summarize_leaks),
    ]


def _summarize_leaks(rows: list[dict], count: int) -> str:
    by_hash: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: r["side"] != "train"):
        by_hash.setdefault(r["hash"], []).append(f"{r['paths']} ({r['side']})")
    shown = [" = ".join(v) for v in list(by_hash.values())[:_SHOWN]]
    more = count // 2 - len(shown)
    return f"{count // 2} image(s) in both: " + "; ".join(shown) + (f"; ... {more} more" if more > 0 else "")


def _fold_checks(manifest, folds, known: bool = True):
    """Subject-independent CV: a subject tested in two folds was trained on in one of them."""
    from great_expectations import expectations as E

    folds = np.asarray(folds)
    if folds.shape != (len(manifest),):
        raise ValueError(f"folds has shape {folds.shape}; expected one fold index per row ({len(manifest)},)")
    table = pd.DataFrame({"subject": manifest["subject"].astype(str).to_numpy(), "fold": folds})
    grouped = table.groupby("subject", sort=True)["fold"]
    frame = pd.DataFrame({
        "subject": pd.Series(grouped.nunique().index, dtype=object),
        "n_folds": grouped.nunique().to_numpy(),
        "folds": pd.Series([",".join(map(str, sorted(set(f)))) for _, f in grouped], dtype=object),
    })
    return frame, ["subject", "folds"], [
        _Check("each subject in one fold", E.ExpectColumnValuesToBeBetween(column="n_folds", max_value=1),
               "subject", "folds per subject <= 1",
               lambda r: f"subject {r['subject']!r} in folds {r['folds']}",
               f"{len(frame)} {'subjects' if known else 'image ids (subjects unknown)'} "
               f"over {len(np.unique(folds))} folds"),
    ]


# --- running and reporting ---------------------------------------------------


def _run(frame: pd.DataFrame, index: list[str], checks: list[_Check]) -> list[dict]:
    import great_expectations as gx

    batch = _batches().get_batch(batch_parameters={"dataframe": frame})  # first: suites need an active context
    # A fresh name each run: add_expectation persists into any saved suite of the same name
    # in whatever context is current, and ours must never be saved anywhere.
    suite = gx.ExpectationSuite(name=f"ferops.{checks[0].column}.{uuid.uuid4().hex}")
    for i, c in enumerate(checks):
        c.expectation.meta = {"check": i}
        suite.add_expectation(c.expectation)
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE,
                     "unexpected_index_column_names": index, "return_unexpected_index_query": False}
    outcome = batch.validate(suite, result_format=result_format)
    by_check = {r.expectation_config.meta["check"]: r for r in outcome.results}
    return [_record(c, by_check[i]) for i, c in enumerate(checks)]


def _record(check: _Check, result) -> dict:
    res = result.result or {}
    rows = [dict(r) for r in res.get("partial_unexpected_index_list") or []]
    count = res.get("unexpected_count")
    error = result.exception_info.get("exception_message") if result.exception_info.get("raised_exception") else None
    if error:
        observed = f"could not evaluate: {error}"
    elif result.success:
        observed = check.observed_ok or f"ok ({res.get('element_count', 0)} rows)"
    elif check.summarize is not None:
        observed = check.summarize(rows, count or 0)
    else:
        shown = [check.describe(r) for r in rows[:_SHOWN]]
        more = (count or len(rows)) - len(shown)
        observed = (f"{count} of {res.get('element_count')}: " if count is not None else "") + "; ".join(shown) \
            + (f"; ... {more} more" if more > 0 else "")
    return {
        "name": check.name,
        "expectation": result.expectation_config.type,
        "column": check.column,
        "success": bool(result.success) and not error,
        "expected": check.expected,
        "observed": observed,
        "element_count": res.get("element_count"),
        "unexpected_count": count,
        "unexpected": rows,
        "error": error,
    }


def _range(values: np.ndarray) -> str:
    return f"{values.min():.1f}..{values.max():.1f}" if len(values) else "no images"


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
