"""Micro-expressions (the paper's §4), the `micro` stage: entry `stage.py` (micro).

Beside it: the clips (`data.py`), one left-out subject as a job (`jobs.py`), the two models of a fold
(`train.py`), UF1/UAR (`metrics.py`) and the leave-one-subject-out leakage guard (`leakage.py`).
"""
