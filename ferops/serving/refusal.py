"""A refused REST request answers 400 with one line that never echoes the payload.

MLflow's scoring server rewrites every MlflowException a model raises as
"Failed to predict data '<the whole input DataFrame's repr>'. \\nError: ...": several lines, starting with
the payload's bytes. The message of this exception ignores that rewrite, so the body keeps ferops' line.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from ferops.errors import shown_key


class RequestRefused(MlflowException):
    """A bad request (400): the message, cut to one short line, is the whole answer."""

    def __init__(self, message: str) -> None:
        self._line = shown_key(" ".join(str(message).split()), 200)
        super().__init__(self._line, INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value: str) -> None:  # the scoring server's rewrite (see the module docstring) is dropped
        pass
