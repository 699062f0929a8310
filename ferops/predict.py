"""Load a trained model from the registry or disk and label face images with it.

Downstream users pull `models:/fer-emotion@champion`; the class names travel
in the MLflow model's metadata so a prediction says "happiness", not "5".
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import keras
import mlflow
import numpy as np

from ferops.data.formats._images import convert_channels
from ferops.data.formats._images import read_image as decode_image
from ferops.data.vocab import EMOTIONS
from ferops.errors import FeropsError
from ferops.tracking.registry import check_model_uri


def _is_local_file(uri: str) -> bool:
    return Path(uri).suffix == ".keras" or "://" not in uri and ":/" not in uri


def load_model(uri: str) -> tuple[keras.Model, tuple[str, ...]]:
    """A registry/runs URI or a local .keras file -> (model, class names)."""
    if _is_local_file(uri):
        if not Path(uri).is_file():
            raise FeropsError(f"{uri}: no such model file; pass a .keras file or a registry URI such as "
                              f"models:/fer-emotion@champion (`ferops registry list` shows them)")
        model = keras.models.load_model(uri)
        n = model.output_shape[-1]
        return model, EMOTIONS if n == len(EMOTIONS) else tuple(f"class_{i}" for i in range(n))
    check_model_uri(uri)
    model = mlflow.keras.load_model(uri)
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


def read_image(path: str | Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Decode with the dataset loaders' reader (clear errors, RGB order), then match the model's input."""
    path = Path(path).resolve()
    image = convert_channels(decode_image(path, path.parent), channels)
    image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return image.reshape(size[0], size[1], channels)


def predict_images(model: keras.Model, classes: tuple[str, ...], paths: list[str]) -> list[dict]:
    """Per-image class probabilities, most likely first."""
    from ferops.train.fit import predict_proba

    h, w, c = model.input_shape[1:]
    batch = np.stack([read_image(p, (h, w), c) for p in paths])
    probs = predict_proba(model, batch)
    results = []
    for path, p in zip(paths, probs):
        order = np.argsort(-p)
        results.append({
            "image": str(path),
            "prediction": classes[order[0]],
            "probabilities": {classes[i]: round(float(p[i]), 6) for i in order},
        })
    return results
