"""One module per experiment family (AU detection, transfer, cross-task, filter analysis, micro-expressions).

Each owns one stage function: the DVC stage, the Prefect task and the CLI
command all call it, so pipeline.py stays the emotion pipeline only.
"""
