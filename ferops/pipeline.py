"""The emotion pipeline's stage functions under one name, for notebooks and tests.

Each stage lives in its own module now (ferops/prepare/ for generate, preprocess
and validate; ferops/experiments/emotion/ for cv, refit, register, holdout and
evaluate), so a DVC stage depends on its own module and not on a hub every stage
shares. Nothing inside ferops imports this module (tests/test_layers.py).
"""

from ferops.experiments.emotion.cv import cross_validate
from ferops.experiments.emotion.evaluate import evaluate
from ferops.experiments.emotion.holdout import holdout_train
from ferops.experiments.emotion.refit import refit
from ferops.experiments.emotion.register import register
from ferops.prepare.generate import generate
from ferops.prepare.preprocess import preprocess, reader_options
from ferops.prepare.validate import validate

__all__ = ["cross_validate", "evaluate", "generate", "holdout_train", "preprocess", "reader_options", "refit",
           "register", "validate"]
