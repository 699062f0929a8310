"""The `generate` stage: render a SynthFACS dataset in a real dataset's on-disk format."""

from __future__ import annotations

from pathlib import Path

import mlflow

from ferops.config import SynthFacsParams
from ferops.io import OutputRefused, check_output_dir
from ferops.tracking.store import configure, data_runs


def generate(sp: SynthFacsParams, seed: int, track: bool = False, tracking=None) -> Path:
    """Render a SynthFACS dataset and write it in a real dataset's on-disk format, plus a contact sheet."""
    from ferops.data import formats
    from ferops.data.synthfacs import contact_sheet, generate as render

    if sp.format == "fer2013":  # one .csv file
        if Path(sp.out).is_dir():
            raise OutputRefused(f"--out {sp.out}: is a folder; fer2013 writes one .csv file, name it (x.csv)")
    else:
        check_output_dir(sp.out)  # before rendering: a refused --out costs nothing
    dataset = render(sp.preset, sp.n, seed=seed, size=sp.size, channels=sp.channels)
    out = formats.write(sp.format, dataset, sp.out)
    sheet = contact_sheet(dataset, Path(f"{sp.out}.contact_sheet.png"))
    if track and tracking is not None:
        configure(data_runs(tracking))  # its own experiment: data runs don't crowd the results
        with mlflow.start_run(run_name=f"generate-{sp.preset}"):
            mlflow.set_tags({"ferops.kind": "generate"})
            mlflow.log_params({f"synthfacs.{k}": v for k, v in vars(sp).items()} | {"seed": seed})
            mlflow.log_artifact(str(sheet))
    return Path(out)
