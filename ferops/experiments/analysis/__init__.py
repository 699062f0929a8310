"""Filter <-> Action Unit analysis (the paper's §3.1), the `analyze` stage: entry `stage.py` (analyze).

Its parts (activations, guided backprop, P(j,u), probes) are the kernel-level library ferops.analysis.
"""
