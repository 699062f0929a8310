"""What loading a model trusts, and a failed load as one line.

A `.keras` file loads in Keras safe mode (no Lambda code runs), and a registry URI resolves only against the
configured store, whose versions ferops itself registered. An MLflow pyfunc folder is different: loading
it unpickles its Python model, which can run any code (MLflow's design). So a bare local folder, or a URI
scheme outside the store (file://, s3://, ...), loads as pyfunc only with `--trust-model`.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from ferops.errors import FeropsError, shown_key

KERAS_FILE = "data/model.keras"  # where MLflow's keras flavour keeps the model inside a version's artifacts


class UntrustedModelError(FeropsError):
    """A model whose loading would run code ferops cannot vouch for, without --trust-model."""


def check_trusted(uri: str, local_folder: bool, trust_model: bool) -> None:
    """Refuse (one line) to unpickle a pyfunc model from outside the configured store unless trusted."""
    if trust_model or not (local_folder or not uri.startswith(("models:/", "runs:/"))):
        return
    raise UntrustedModelError(f"{shown_key(uri)}: loading an MLflow pyfunc model outside the registry unpickles "
                              f"its code; register it, or pass --trust-model if you trust its author")


@contextlib.contextmanager
def load_errors(uri: str, version: str | None = None) -> Iterator[None]:
    """Any failure while reading a model's files becomes one line naming the URI, the version and the file."""
    try:
        yield
    except FeropsError:
        raise
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        why = shown_key(" ".join(lines[0].split()) if lines else type(exc).__name__, 70)
        where = f" v{version} ({KERAS_FILE})" if version else ""
        raise FeropsError(f"{shown_key(uri)}{where}: cannot load the model (file missing or damaged): {why}") from None
