"""The fer-pipeline pyfunc: raw images in, one row per face out (MLflow model, REST-servable).

Input, a DataFrame (REST: `dataframe_split` / `dataframe_records`, `image` base64-encoded):
    image         binary: an encoded image file, or a .npy array of raw pixels (ferops.serving.pixels)
    colour_order  string: file | rgb | bgr | gray (never guessed; see ferops.serving.pixels)
    image_id      string, optional: echoed in the output (default: the row number)
Params (optional): max_faces (int), detect_faces (bool; false = each image is one face crop).
Output, a DataFrame with one row per face (largest first within an image): image, frame, face,
x, y, w, h (pixels in the input image), aligned (eyes found), prediction (top emotion),
p_<emotion> probabilities, and au_<AU> presence probabilities when the bundle has an AU model.

The bundle carries the emotion champion's and AU champion's exact .keras files, the settings
of the detector and crop, and the ferops code (code_paths), so it loads with MLflow alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from ferops.errors import FeropsError, shown_key
from ferops.serving.analyzer import ID_COLUMNS, Analyzer, Settings, output_columns
from ferops.serving.pixels import decode, pipeline_input
from ferops.serving.refusal import RequestRefused
from ferops.serving.runtime import CONFIG, bundle_analyzer, load_bundle
from ferops.serving.synthetic import still

_TYPES = {"image": "string", "frame": "long", "face": "long", "x": "long", "y": "long", "w": "long", "h": "long",
          "aligned": "boolean", "prediction": "string"}
# What the bundle needs at load time besides Keras (pinned to this environment's versions).
_REQUIREMENTS = ("opencv-python-headless", "pyyaml", "tqdm")


class FacePipeline(mlflow.pyfunc.PythonModel):
    """Detector + eye-aligned crop (as `ferops preprocess`) + the emotion and AU champions."""

    def load_context(self, context):
        config = json.loads(Path(context.artifacts[CONFIG]).read_text())
        self.analyzer = bundle_analyzer(config, context.artifacts)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return score_frame(self.analyzer, model_input, params or {})


def score_frame(analyzer: Analyzer, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The pyfunc's predict: decode each row as declared, find and score its faces in one forward pass."""
    settings = analyzer.settings
    detect = bool(params.get("detect_faces", settings.detect_faces))
    max_faces = int(params.get("max_faces", settings.max_faces))
    if max_faces < 1:  # 0 or -1 used to answer 200 with no faces; the CLI refuses --max-faces 0 too
        raise RequestRefused(f"params.max_faces {max_faces}: must be >= 1")
    frame = pd.DataFrame(frame).reset_index(drop=True)
    missing = [c for c in ("image", "colour_order") if c not in frame]
    if missing:
        raise RequestRefused(f"input columns {missing} missing; expected image, colour_order (and optionally "
                             f"image_id)")
    ids = frame["image_id"] if "image_id" in frame else pd.Series([None] * len(frame))
    found = []
    try:
        for i, (data, order, given) in enumerate(zip(frame["image"], frame["colour_order"], ids)):
            image_id = str(i) if given is None or (isinstance(given, float) and np.isnan(given)) else str(given)
            image = decode(data, str(order).lower(), f"row {i} (image_id {shown_key(image_id, 40)})",
                           max_pixels=settings.max_pixels)
            found.append(analyzer.find(image, image_id, 0, detect, max_faces))
    except FeropsError as exc:  # REST: a 400 answer naming the row, not a 500
        raise RequestRefused(str(exc)) from None
    rows = [row for rows in analyzer.score(found) for row in rows]
    return pd.DataFrame(rows, columns=analyzer.columns())


def signature(columns: list[str], settings: Settings) -> ModelSignature:
    inputs = Schema([ColSpec("binary", "image"), ColSpec("string", "colour_order"),
                     ColSpec("string", "image_id", required=False)])
    outputs = Schema([ColSpec(_TYPES.get(c, "double"), c) for c in columns])
    params = ParamSchema([ParamSpec("max_faces", "long", settings.max_faces),
                          ParamSpec("detect_faces", "boolean", settings.detect_faces)])
    return ModelSignature(inputs, outputs, params)


def requirements() -> list[str]:
    from ferops.tracking.model_logging import KERAS_REQUIREMENTS, pinned_requirements  # imports Keras

    return pinned_requirements((*KERAS_REQUIREMENTS, *_REQUIREMENTS))


def log_pipeline(name: str, files: dict[str, str], labels: dict[str, tuple[str, ...]], settings: Settings,
                 workdir: Path, metadata: dict):
    """Log the bundle under the active run: artifacts, code, signature, input example; returns the ModelInfo.

    `files` maps "emotion" (and "au") to .keras files, `labels` the same keys to output names.
    """
    config = {"settings": settings.__dict__,
              **{key: {"labels": list(labels[key]), "prefix": "p_" if key == "emotion" else "au_"} for key in files}}
    config_path = Path(workdir) / "pipeline.json"
    config_path.write_text(json.dumps(config, indent=2))
    columns = output_columns([(config[key]["prefix"], labels[key]) for key in files])
    code = Path(workdir) / "code" / "ferops"  # the package without bytecode caches
    shutil.copytree(Path(__file__).resolve().parents[1], code, ignore=shutil.ignore_patterns("__pycache__"))
    _, png = cv2.imencode(".png", cv2.cvtColor(still(seed=0), cv2.COLOR_RGB2BGR))
    example = pipeline_input([png.tobytes()], "file", ["example.png"])
    return mlflow.pyfunc.log_model(
        name=name, python_model=FacePipeline(), artifacts={CONFIG: str(config_path), **files},
        code_paths=[str(code)], signature=signature(columns, settings),
        input_example=example, pip_requirements=requirements(), metadata=metadata,
    )


__all__ = ["FacePipeline", "ID_COLUMNS", "bundle_analyzer", "load_bundle", "log_pipeline", "score_frame", "signature"]
