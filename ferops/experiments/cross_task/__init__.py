"""Cross-task transfer (do emotion features make AUs cheaper to learn?), the `cross_task` stage: entry `stage.py`."""
