"""AU detection (the paper's §3.2), the `au` stage: entry `stage.py` (run_au), its metrics in `metrics.py`."""
