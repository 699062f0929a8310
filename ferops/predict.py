"""Load a trained model from the registry or disk and label face images with it.

Downstream users pull `models:/fer-emotion@champion`; the class names travel
in the MLflow model's metadata so a prediction says "happiness", not "5".
"""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import mlflow
import numpy as np

from ferops.data.formats._images import convert_channels
from ferops.data.formats._images import read_image as decode_image
from ferops.data.vocab import EMOTIONS


def load_model(uri: str) -> tuple[keras.Model, tuple[str, ...]]:
    """A registry/runs URI or a local .keras file -> (model, class names)."""
    if Path(uri).suffix == ".keras" and Path(uri).exists():
        model = keras.models.load_model(uri)
        n = model.output_shape[-1]
        return model, EMOTIONS if n == len(EMOTIONS) else tuple(f"class_{i}" for i in range(n))
    model = mlflow.keras.load_model(uri)
    metadata = mlflow.models.get_model_info(uri).metadata or {}
    n = model.output_shape[-1]
    classes = tuple(metadata.get("classes") or (f"class_{i}" for i in range(n)))
    return model, classes


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
