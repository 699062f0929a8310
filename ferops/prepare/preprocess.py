"""The `preprocess` stage: a raw dataset as shipped -> aligned face crops in the common form."""

from __future__ import annotations

from pathlib import Path

from ferops.config import Params
from ferops.io import atomic_dir, check_output_dir


def reader_options(params: Params) -> dict:
    """The loader options params.yaml sets for the dataset's format."""
    d = params.dataset
    return {
        "ck+": {"last_k": d.last_k, "neutral_first_frame": d.neutral_first_frame},
        "folders": {"subject_pattern": d.subject_pattern},
    }.get(d.format, {})


def preprocess(params: Params) -> Path:
    """Raw dataset as shipped -> aligned, resized face crops in the common form (+ rejects.csv).

    Under validate.on_fail: quarantine the per-image checks run here, before the one atomic write, because
    the processed dir is the validate stage's dependency and DVC forbids a stage rewriting its own (see
    ferops.data.quarantine). Every image left out, and every file the reader skipped, is counted on stdout;
    copies within the test split that validate.test_duplicates keeps are listed in flagged.csv.
    """
    import pandas as pd

    from ferops.data import formats
    from ferops.data.faces import preprocess as crop_faces
    from ferops.data.formats.skipped import reader_notes
    from ferops.data.quarantine import FLAGGED, quarantine

    check_output_dir(params.dataset.processed_dir, "dataset.processed_dir")  # before the work, not after it
    raw = formats.read(params.dataset.format, params.dataset.raw_dir, **reader_options(params))
    raw.name = params.dataset.name
    for line in reader_notes(raw.extras):
        print(f"{params.dataset.raw_dir}: {line}")
    pp, vp = params.preprocess, params.validate
    processed, rejects = crop_faces(raw, size=pp.image_size, channels=pp.channels, detect_faces=pp.detect_faces)
    for reason, n in rejects["reason"].value_counts().items():
        print(f"preprocess: rejected {n} image{'s' if n != 1 else ''}: {reason} (listed in rejects.csv)")
    out = Path(params.dataset.processed_dir)
    flagged = None
    if vp.on_fail == "quarantine":
        processed, held = quarantine(processed, vp.pixel_mean_range, vp.pixel_std_range,
                                     test_duplicates=vp.test_duplicates)
        rejects, flagged = pd.concat([rejects, held.rejects], ignore_index=True), held.flagged
        for line in held.lines(out / "rejects.csv"):
            print(line)
    with atomic_dir(out, stage="preprocess", what="dataset.processed_dir") as tmp:
        processed.save(tmp)
        rejects.to_csv(tmp / "rejects.csv", index=False)
        if flagged is not None:  # kept images quarantine only lists (validate.test_duplicates: keep)
            flagged.to_csv(tmp / FLAGGED, index=False)
    return out
