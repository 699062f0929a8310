"""`ferops predict`: per-face emotions (and AUs) for image files, folders (recursive) and videos.

The default model is `models:/fer-pipeline@champion` (ferops.serving: detector,
eye-aligned crop as in training, emotion and AU champions, their settings
bundled). A plain emotion model (a .keras file, `models:/fer-emotion@champion`)
works too, with params.yaml `serving` settings. Everything goes through
ferops.serving.video.stream: videos are decoded frame by frame, never loaded
whole, and rows are written as they come, so memory stays flat.

An unreadable input (corrupt or truncated file, unknown codec) is one line
naming the file; the rest is still scored. Exit status: 0 all read, 1 some
inputs unreadable (the rest written), 2 nothing could be read.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import mlflow

from ferops.config import ServingParams
from ferops.data.vocab import EMOTIONS
from ferops.errors import FeropsError
from ferops.io import atomic_file
from ferops.serving.analyzer import Analyzer, Head, Settings
from ferops.serving.backend import quiet_keras_import
from ferops.serving.runtime import head_model, load_bundle
from ferops.serving.video import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    Annotator,
    Problem,
    image_frames,
    stream,
    video_frames,
    video_info,
)
from ferops.tracking.registry import check_model_uri
from ferops.train.precision import resolve as resolve_precision, with_policy
from ferops.trust import check_trusted, load_errors

DEFAULT_MODEL = "models:/fer-pipeline@champion"
NUMPY_MAX_IMAGES = 256  # runtime auto: photos scored by NumPy (no Keras start-up) up to this many


def _is_local_file(uri: str) -> bool:
    return Path(uri).suffix == ".keras" or "://" not in uri and ":/" not in uri


def _download(uri: str, folder: str) -> str:
    """A model's files into `folder`, without MLflow's per-file progress bar (stderr carries one-line errors)."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as BAR

    saved = os.environ.get(BAR.name)
    os.environ[BAR.name] = "false"
    try:
        return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
    finally:
        if saved is None:
            del os.environ[BAR.name]
        else:
            os.environ[BAR.name] = saved


def load_model(uri: str, runtime: str = "keras", required: bool = True) -> tuple:
    """A registry/runs URI or a local .keras file -> (model, class names): a keras.Model in this machine's
    precision, or under `runtime` numpy a float32 NumPy chain (ferops.serving.runtime.head_model)."""
    if _is_local_file(uri):
        if not Path(uri).is_file():
            raise FeropsError(f"{uri}: no such model file; pass a .keras file or a registry URI such as "
                              f"models:/fer-emotion@champion (`ferops registry list` shows them)")
        with load_errors(uri):  # safe mode: a Lambda layer's code never runs
            model = head_model(uri, runtime, required)
        n = model.output_shape[-1]
        return model, EMOTIONS if n == len(EMOTIONS) else tuple(f"class_{i}" for i in range(n))
    ref = check_model_uri(uri)
    with load_errors(uri, ref.version):  # a damaged or missing model.keras in the version's artifacts
        if runtime == "numpy":
            with tempfile.TemporaryDirectory(prefix="ferops-model-") as tmp:
                local = Path(_download(uri, tmp))
                data = mlflow.models.Model.load(str(local / "MLmodel")).flavors["keras"]["data"]
                model = head_model(str(local / data / "model.keras"), runtime, required)
        else:
            quiet_keras_import()
            model = with_policy(mlflow.keras.load_model(uri), resolve_precision())
    metadata = mlflow.models.get_model_info(uri).metadata or {}
    n = model.output_shape[-1]
    classes = tuple(metadata.get("classes") or (f"class_{i}" for i in range(n)))
    return model, classes


def trained_on(uri: str) -> dict:
    """The training-rows record a ferops model carries (see ferops.train.refit.training_rows)."""
    from ferops.train.refit import TRAINING_ROWS

    if _is_local_file(uri):
        record = Path(uri).with_name(TRAINING_ROWS)
        if not record.exists():
            raise FeropsError(f"{uri}: no {TRAINING_ROWS} beside it, so what it trained on is unknown and an honest "
                              f"score is impossible; evaluate a registry model (models:/NAME@ALIAS) instead")
        return json.loads(record.read_text())
    run_id = mlflow.models.get_model_info(uri).run_id
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{TRAINING_ROWS}")
    except Exception:
        raise FeropsError(f"{uri}: its run {run_id} has no {TRAINING_ROWS}, so what it trained on is unknown; "
                          f"retrain it with this ferops version") from None


def _pyfunc_analyzer(uri: str) -> Analyzer:
    """The Analyzer a pyfunc's own code builds (Keras, this machine's precision): MLflow unpickles that code."""
    quiet_keras_import()
    return mlflow.pyfunc.load_model(uri).unwrap_python_model().analyzer


def load_analyzer(uri: str, serving: ServingParams | None, trust_model: bool = False, runtime: str = "keras",
                  required: bool = True) -> Analyzer:
    """A fer-pipeline bundle (with its own settings) or a plain emotion model (with params.yaml `serving`).

    A bundle is a pyfunc, whose loading unpickles code: from outside the registry only with `trust_model`.
    `runtime` numpy reads the bundle's .keras files into ferops.serving.numpy_model (no Keras, nothing
    unpickled); without `required` a file it cannot compute is loaded in Keras instead.
    """
    local_bundle = _is_local_file(uri) and (Path(uri) / "MLmodel").is_file()
    if local_bundle or not _is_local_file(uri):
        ref = None if local_bundle else check_model_uri(uri)
        with load_errors(uri, ref and ref.version):
            flavors = mlflow.models.get_model_info(uri).flavors
        if "keras" not in flavors:
            check_trusted(uri, local_bundle, trust_model)
            with load_errors(uri, ref and ref.version):
                if runtime == "keras":
                    return _pyfunc_analyzer(uri)
                with contextlib.ExitStack() as stack:  # a download is read whole, then removed
                    folder = uri if local_bundle else _download(uri, stack.enter_context(
                        tempfile.TemporaryDirectory(prefix="ferops-bundle-")))
                    analyzer = load_bundle(folder, runtime, required)
                if analyzer is not None:
                    return analyzer
                if required:  # `--runtime numpy` asked for: say so rather than start Keras behind the user's back
                    raise FeropsError(f"{uri}: not a fer-pipeline bundle, so the numpy runtime cannot read it (only "
                                      f"its own pyfunc code knows how to run it); use --runtime keras or auto")
                return _pyfunc_analyzer(uri)  # not a ferops bundle: only its own pyfunc code knows how to run it
    if serving is None:
        raise FeropsError(f"{uri}: a plain emotion model takes its face-detection settings from params.yaml "
                          f"`serving`, and there is no params.yaml here; run from the project folder (or pass "
                          f"--params), or use a bundle: {DEFAULT_MODEL}")
    model, classes = load_model(uri, runtime, required)
    return Analyzer(Head(model, classes, "p_"), None, Settings.from_params(serving))


def choose_runtime(runtime: str, paths: list[str]) -> tuple[str, bool]:
    """`--runtime` -> (runtime, required). auto: NumPy for up to NUMPY_MAX_IMAGES photos and no video, else Keras.

    Keras takes 5-6 s to start here and then computes bf16 at 2-3x NumPy's float32 rate; below
    NUMPY_MAX_IMAGES photos NumPy's slower pass (about 3 ms per face per model at width 0.5)
    still ends before Keras would have started, and detection costs more than either.
    """
    if runtime != "auto":
        return runtime, True
    inputs, _ = collect_inputs(paths)
    few_photos = not any(i.video for i in inputs) and len(inputs) <= NUMPY_MAX_IMAGES
    return ("numpy", False) if few_photos else ("keras", True)


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Input:
    path: Path
    name: Path  # relative to the folder it was found in: annotated outputs mirror it
    video: bool


def collect_inputs(paths: list[str]) -> tuple[list[Input], list[Problem]]:
    """Files as given, folders searched recursively for images and videos; missing paths become Problems."""
    inputs, problems = [], []
    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in known)
            if not found:
                problems.append(Problem(arg, f"folder holds no image or video files ({', '.join(sorted(known))})"))
            inputs += [Input(f, f.relative_to(path), f.suffix.lower() in VIDEO_SUFFIXES) for f in found]
        elif path.is_file():
            inputs.append(Input(path, Path(path.name), path.suffix.lower() in VIDEO_SUFFIXES))
        else:
            problems.append(Problem(arg, "no such file or folder"))
    return inputs, problems


def symlinked_folders(paths: list[str]) -> list[str]:
    """One note per symlinked folder inside a searched folder: never followed (a loop would never end), never
    silently skipped either."""
    notes = []
    for arg in paths:
        if Path(arg).is_dir():
            for link in sorted(p for p in Path(arg).rglob("*") if p.is_symlink() and not p.is_file()):
                loop = link.resolve(strict=False) in (link.parent.resolve(), *link.parent.resolve().parents)
                notes.append(f"{link}: symlinked folder not searched ({'a loop; ' if loop else ''}links to "
                             f"folders are not followed)")
    return notes


def _frames(inputs: list[Input], stride: int):
    for item in inputs:
        yield from video_frames(item.path, stride) if item.video else image_frames(item.path)


# ---------------------------------------------------------------------------- output


def nested(row: dict, heads: list[tuple[str, tuple[str, ...]]]) -> dict:
    """A flat row (CSV, pyfunc) as a JSON record: box, emotion probabilities and AU probabilities grouped."""
    record = {k: row[k] for k in ("image", "frame", "face")}
    record |= {"box": [row[k] for k in ("x", "y", "w", "h")], "aligned": row["aligned"],
               "prediction": row["prediction"]}
    for prefix, labels in heads:
        record["probabilities" if prefix == "p_" else "aus"] = {label: row[prefix + label] for label in labels}
    return record


@contextlib.contextmanager
def open_rows(out: str | None, columns: list[str], heads) -> Iterator:
    """A `write(rows)` callable: CSV or JSON to `out` (temp file, renamed when complete), or JSON to stdout."""
    suffix = Path(out).suffix.lower() if out else ".json"
    if suffix not in (".csv", ".json"):
        raise FeropsError(f"--out {out}: expected a .csv or .json file name")
    with contextlib.ExitStack() as stack:
        if out:
            tmp = stack.enter_context(atomic_file(out, make_parents=False))
            fh = stack.enter_context(open(tmp, "w", newline=""))
        else:
            fh = sys.stdout
        count = 0
        if suffix == ".csv":
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()

            def write(rows):
                writer.writerows(rows)
        else:
            def write(rows):
                nonlocal count
                for row in rows:
                    fh.write(("[\n  " if count == 0 else ",\n  ") + json.dumps(nested(row, heads)))
                    count += 1
        yield write
        if suffix == ".json":
            fh.write("\n]\n" if count else "[]\n")
        fh.flush()


@dataclass
class Report:
    inputs: int = 0
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    annotated: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        return (f"scored {self.faces} face{'s' if self.faces != 1 else ''} in {self.frames} "
                f"frame{'s' if self.frames != 1 else ''} of {self.inputs} input{'s' if self.inputs != 1 else ''} "
                f"in {self.seconds:.1f} s ({rate:.1f} frames/s)")


def _face_notes(counts: dict[str, list[int]], videos: set[str], max_faces: int) -> list[str]:
    """Zero faces and capped faces, one line per image (or per video, counted over its frames)."""
    notes = []
    for source, (frames, empty, capped) in counts.items():
        if source in videos:
            if empty:
                notes.append(f"{source}: no face found in {empty} of {frames} frames scored")
            if capped:
                notes.append(f"{source}: more than {max_faces} faces in {capped} frames; kept the largest")
        elif empty:
            notes.append(f"{source}: no face found")
        elif capped:
            notes.append(f"{source}: {capped} faces found, kept the {max_faces} largest (--max-faces)")
    return notes


def predict(analyzer: Analyzer, paths: list[str], *, out: str | None = None, annotate: str | None = None,
            detect: bool | None = None, max_faces: int | None = None, stride: int | None = None,
            progress: bool = True) -> Report:
    """Score every readable face in `paths`; writes `out` (or JSON to stdout) and annotations as it goes.

    detect / max_faces / stride default to the analyzer's settings. Raises FeropsError (nothing written)
    when no input could be read at all.
    """
    from tqdm.auto import tqdm

    settings = analyzer.settings
    detect = settings.detect_faces if detect is None else detect
    max_faces = max_faces or settings.max_faces
    stride = stride or settings.stride
    inputs, problems = collect_inputs(paths)
    if not inputs:
        raise FeropsError("; ".join(p.line() for p in problems) or "no input given")
    videos = {str(i.path): i for i in inputs if i.video}
    if annotate and Path(annotate).suffix.lower() in VIDEO_SUFFIXES and (len(inputs) != 1 or not videos):
        raise FeropsError(f"--annotate {annotate}: a video file takes exactly one video input; "
                          f"pass a folder (--annotate out_dir/) for several inputs or for images")
    info = {source: video_info(item.path, stride) for source, item in videos.items()}
    heads = [(h.prefix, h.labels) for h in analyzer.heads]
    report = Report(inputs=len(inputs), problems=problems)
    annotator = Annotator(Path(annotate), {str(i.path): i.name for i in inputs},
                          {s: fps for s, (_, fps) in info.items()}) if annotate else None
    counts: dict[str, list[int]] = {}
    total = sum(n for n, _ in info.values()) + len(inputs) - len(videos)
    start = time.perf_counter()
    bar = tqdm(total=total or None, unit="frame", desc="predict", disable=None if progress else True,
               file=sys.stderr, dynamic_ncols=True)
    try:
        with open_rows(out, analyzer.columns(), heads) as write:
            for item in stream(analyzer, _frames(inputs, stride), detect=detect, max_faces=max_faces,
                               window=settings.window, queue=settings.queue, keep_images=annotator is not None):
                if isinstance(item, Problem):
                    report.problems.append(item)
                    continue
                faces, rows = item
                write(rows)
                if annotator is not None:
                    annotator.add(faces, rows)
                count = counts.setdefault(faces.source, [0, 0, 0])
                count[0] += 1
                count[1] += not rows
                if faces.found > max_faces:  # videos count frames, images the faces found
                    count[2] += 1 if faces.source in videos else faces.found
                report.frames += 1
                report.faces += len(rows)
                bar.update(1)
            if report.frames == 0:
                lines = [p.line() for p in report.problems]
                raise FeropsError(lines[0] if len(lines) == 1 else f"nothing could be read: {'; '.join(lines)}")
    finally:
        bar.close()
        if annotator is not None:
            annotator.close()
            report.annotated = annotator.written
    report.seconds = time.perf_counter() - start
    report.notes = _face_notes(counts, set(videos), max_faces) + symlinked_folders(paths)
    return report


def run(model: str, paths: list[str], params_path: str, *, out: str | None, annotate: str | None, whole_image: bool,
        max_faces: int | None, stride: int | None, progress: bool = True, trust_model: bool = False,
        runtime: str = "auto") -> int:
    """`ferops predict`: load, score, print the problems, notes and a summary to stderr; returns the exit status."""
    from ferops.config import load_params
    from ferops.tracking.sqlite_check import check_sqlite_store
    from ferops.tracking.store import configure, tracking_uri

    for flag, value in (("--max-faces", max_faces), ("--stride", stride)):
        if value is not None and value < 1:
            raise FeropsError(f"{flag} {value}: must be >= 1")
    params = load_params(params_path) if Path(params_path).exists() else None
    if out and not Path(out).parent.is_dir():  # before loading anything; and never created for the user
        raise FeropsError(f"--out {out}: folder {Path(out).parent} does not exist; create it or choose another")
    if params is not None and not _is_local_file(model):  # the registry is where params.yaml says
        check_sqlite_store(tracking_uri(params.tracking), write=False)  # a mistyped store is not created
        configure(params.tracking)
    runtime, required = choose_runtime(runtime, paths)
    analyzer = load_analyzer(model, params.serving if params else None, trust_model, runtime, required)
    report = predict(analyzer, paths, out=out, annotate=annotate, detect=False if whole_image else None,
                     max_faces=max_faces, stride=stride, progress=progress)
    for line in [p.line() for p in report.problems] + report.notes + [report.summary()]:
        print(line, file=sys.stderr)
    for path in report.annotated:
        print(f"annotated: {path}", file=sys.stderr)
    return 1 if report.problems else 0
