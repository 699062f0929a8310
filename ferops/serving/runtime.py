"""What computes a served model (Keras in this machine's precision, or NumPy in float32), and a bundle's loading.

NumPy needs no Keras in the process, which is what one photo's answer time is made of
(docs/precision.md); Keras computes bf16 where the CPU has it, which long streams repay.
"""

from __future__ import annotations

import json
from pathlib import Path

from ferops.errors import FeropsError
from ferops.serving.analyzer import Analyzer, Head, Settings
from ferops.serving.numpy_model import NotSupported, load_numpy_model

CONFIG = "config"  # the bundle's artifact holding its settings and output labels


def head_model(path: str, runtime: str = "keras", required: bool = True):
    """One .keras file, computed by `runtime`; numpy falls back to Keras (unless `required`) for layers it lacks."""
    if runtime == "numpy":
        try:
            return load_numpy_model(path)
        except NotSupported as exc:
            if required:
                raise FeropsError(f"{path}: the numpy runtime cannot compute it ({exc}); use --runtime keras") from None
    from ferops.serving.backend import quiet_keras_import
    from ferops.train.precision import load_keras  # this machine's precision (FEROPS_PRECISION forces one)

    quiet_keras_import()
    return load_keras(path)


def bundle_analyzer(config: dict, files: dict[str, str], runtime: str = "keras", required: bool = True) -> Analyzer:
    """The bundle's Analyzer from its config and its model files (artifact name -> local path)."""
    heads = {name: Head(head_model(files[name], runtime, required), tuple(config[name]["labels"]),
                        config[name]["prefix"]) if config.get(name) else None for name in ("emotion", "au")}
    return Analyzer(heads["emotion"], heads["au"], Settings(**config["settings"]))


def load_bundle(folder: str | Path, runtime: str, required: bool = True) -> Analyzer | None:
    """A downloaded bundle's Analyzer read from its files (MLmodel's artifact list), without unpickling anything;
    None for a pyfunc that is not a fer-pipeline bundle."""
    import mlflow

    folder = Path(folder)
    pyfunc = mlflow.models.Model.load(str(folder / "MLmodel")).flavors.get("python_function", {})
    artifacts = pyfunc.get("artifacts") or {}
    if pyfunc.get("python_model") is None or CONFIG not in artifacts:
        return None
    files = {name: str(folder / spec["path"]) for name, spec in artifacts.items()}
    return bundle_analyzer(json.loads(Path(files[CONFIG]).read_text()), files, runtime, required)


__all__ = ["CONFIG", "bundle_analyzer", "head_model", "load_bundle"]
