"""The data stages, one module each: generate (SynthFACS), preprocess (raw -> face crops), validate.

They come before any training. Each module holds one stage function, so each
DVC stage depends on its own module and not on its siblings' (see dvc.yaml).
"""
