"""Extra SynthFACS datasets, rendered straight to the processed form.

The emotion pipeline reads SynthFACS through a real dataset's on-disk format
on purpose. The AU experiments, the transfer matrix and the filter probes need
what that format drops: exact AU presence and intensity on every frame, the
AU region masks, and datasets whose AUs are drawn independently of emotion.
Each domain in params.yaml `domains:` is one DVC-versioned directory.
"""

from __future__ import annotations

from pathlib import Path

from ferops.config import DomainParams
from ferops.data.dataset import Dataset
from ferops.data.synthfacs_dataset import synthfacs_dataset
from ferops.io import check_output_dir


def render_domain(domain: DomainParams, seed: int, name: str) -> Path:
    """Render `domain` and save it (atomically) under `domain.out` as a processed ferops dataset."""
    check_output_dir(domain.out, f"domains.{name}.out")  # before rendering: a refused folder costs nothing
    dataset = synthfacs_dataset(domain.preset, domain.n, seed=seed, size=domain.size, channels=domain.channels,
                                masks=domain.masks, frames=domain.frames, progress=True)
    dataset = Dataset(dataset.images, dataset.manifest, dataset.classes, f"synthfacs_{name}", dataset.extras)
    return dataset.save(domain.out)
