"""Train on A, test on B (the paper's Table 3), the `transfer` stage: entry `stage.py`, its jobs in `jobs.py`."""
