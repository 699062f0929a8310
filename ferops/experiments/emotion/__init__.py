"""The emotion experiment's stages, one module each: cv, refit, register, plus holdout and evaluate.

Each module holds one stage function (the DVC stage, the Prefect task and the
CLI command all call it), so each stage depends on its own module and on what
it imports, not on a hub shared with the other stages.
"""
