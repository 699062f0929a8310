"""Dataset presets that mirror the paper's datasets, and the one `generate` entry point.

- posed (CK+):     ~100 subjects, frontal studio shots, sequences from a neutral first
                   frame to the apex in the last frame, one emotion per sequence out of
                   the 7 non-neutral ones; classes are all 8 (neutral comes from first
                   frames, as the CK+ loader takes it).
- wild (FER2013):  one identity per image, pose/light/noise/occlusion, FER2013's class
                   imbalance (rare disgust, no contempt), Training/PublicTest/PrivateTest.
- micro (CASME II): 26 subjects, 200 fps clips from onset through apex to offset at low
                   intensity; CASME II's five classes and their imbalance.
- au:              AU-balanced stills: every AU on or off independently (no emotion label),
                   so AU detectors and filter probes cannot lean on emotion co-occurrence.
- webcam:          a third capture domain for transfer: colour, head turns, side light,
                   soft focus and sensor noise; seven classes (no contempt), 80 subjects.

Each preset renders its real dataset's framing (framing.py): CK+48's eye-aligned
brow-to-chin crop for posed, micro and au; FER2013's looser upright crop for wild
and webcam.

Every sample (sequence or image) draws from its own seeded generator
(SeedSequence keyed by seed, preset and sample index), and labels are dealt in
fixed shuffled blocks, so sample i is the same whatever n is and in whatever
order samples are made. That is what makes `dvc repro` byte-stable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd
from tqdm import tqdm

from ferops.data.dataset import REQUIRED_COLUMNS, Dataset
from ferops.data.synthfacs.expression import sided_intensities
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.labels import au_columns, identity_columns, nuisance_columns
from ferops.data.synthfacs.nuisance import Nuisance
from ferops.data.synthfacs.prototypes import sample_aus, sample_independent_aus
from ferops.data.synthfacs.renderer import render_face
from ferops.data.synthfacs.sequences import micro_envelope, posed_envelope, scale_aus
from ferops.data.vocab import AU_CODES, EMOTIONS


@dataclass(frozen=True)
class Preset:
    name: str
    tag: int                                  # seeds presets apart
    classes: tuple[str, ...]                  # the dataset's label space (label indexes this)
    deal: tuple[tuple[str, int], ...]         # emotions dealt per block, with counts (proportions)
    prototype_set: str                        # section of prototypes.yaml
    nuisance_profile: str
    n_subjects: int | None                    # None: a new identity per sample
    frames: tuple[int, int] | None            # sequence length range (inclusive); None: single images
    splits: tuple[tuple[str, int], ...]       # split names dealt per block of sum(counts)
    framing: str = "ck+"                      # framing.FRAMINGS: the real dataset's crop
    fps: int | None = None
    au_prevalence: float | None = None        # set: AUs drawn independently (no emotion label), not from prototypes


FER2013_TRAIN_COUNTS = (("anger", 3995), ("disgust", 436), ("fear", 4097), ("happiness", 7215),
                        ("sadness", 4830), ("surprise", 3171), ("neutral", 4965))
CASME2_COUNTS = (("happiness", 32), ("disgust", 64), ("repression", 27), ("surprise", 25), ("others", 99))

PRESETS: dict[str, Preset] = {
    "posed": Preset(
        name="posed", tag=1, classes=EMOTIONS,
        deal=tuple((e, 1) for e in EMOTIONS if e != "neutral"),
        prototype_set="posed", nuisance_profile="studio", n_subjects=100, frames=(6, 12),
        splits=(("train", 1),),
    ),
    "wild": Preset(
        name="wild", tag=2, classes=tuple(e for e in EMOTIONS if e != "contempt"),
        deal=FER2013_TRAIN_COUNTS, prototype_set="posed", nuisance_profile="wild", n_subjects=None,
        frames=None, splits=(("Training", 8), ("PublicTest", 1), ("PrivateTest", 1)), framing="fer2013",
    ),
    "micro": Preset(
        name="micro", tag=3, classes=("happiness", "disgust", "repression", "surprise", "others"),
        deal=CASME2_COUNTS, prototype_set="micro", nuisance_profile="studio", n_subjects=26,
        frames=(17, 49), splits=(("train", 1),), fps=200,
    ),
    "au": Preset(
        name="au", tag=4, classes=EMOTIONS, deal=(("unlabelled", 1),), prototype_set="independent",
        nuisance_profile="studio", n_subjects=100, frames=None, splits=(("train", 1),), au_prevalence=0.3,
    ),
    "webcam": Preset(
        name="webcam", tag=5, classes=tuple(e for e in EMOTIONS if e != "contempt"),
        deal=tuple((e, 1) for e in EMOTIONS if e != "contempt"), prototype_set="posed",
        nuisance_profile="webcam", n_subjects=80, frames=None, splits=(("train", 1),), framing="fer2013",
    ),
}


def _rng(seed: int, preset: Preset, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, preset.tag, stream, index]))


@lru_cache(maxsize=32)
def _shuffled_block(items: tuple[tuple[str, int], ...], seed: int, tag: int, stream: int, block: int) -> tuple[str, ...]:
    names = [name for name, count in items for _ in range(count)]
    order = np.random.default_rng(np.random.SeedSequence([seed, tag, stream, block])).permutation(len(names))
    return tuple(names[k] for k in order)


def _dealt(items: tuple[tuple[str, int], ...], index: int, seed: int, preset: Preset, stream: int) -> str:
    """Item for sample `index` from shuffled blocks holding each item `count` times."""
    size = sum(count for _, count in items)
    return _shuffled_block(items, seed, preset.tag, stream, index // size)[index % size]


def _identity(seed: int, preset: Preset, index: int) -> tuple[str, Identity]:
    if preset.n_subjects is None:
        return f"S{index + 1:05d}", Identity.sample(_rng(seed, preset, 0, index))
    subject = index % preset.n_subjects
    return f"S{subject + 1:03d}", Identity.sample(_rng(seed, preset, 0, subject))


def _sample_frames(preset: Preset, index: int, seed: int, size: int, channels: int, masks: bool,
                   frames: tuple[int, int] | None):
    """Render sample `index`: yields (image, masks dict, manifest row) per frame."""
    emotion = _dealt(preset.deal, index, seed, preset, 2)
    split = _dealt(preset.splits, index, seed, preset, 3)
    subject, identity = _identity(seed, preset, index)
    rng = _rng(seed, preset, 1, index)
    if preset.au_prevalence is not None:
        apex_aus, variant = sample_independent_aus(rng, preset.au_prevalence), 0
    else:
        apex_aus, variant = sample_aus(emotion, rng, preset.prototype_set)
    nuisance = Nuisance.sample(rng, preset.nuisance_profile)

    if preset.frames is None:
        sequence = f"{index + 1:06d}"
        plan = [(0, 1.0, f"{preset.name}/{split}/{sequence}.png")]
        timing = {}
    else:
        lo, hi = frames or preset.frames
        length = int(rng.integers(lo, hi + 1))
        take = index // preset.n_subjects + 1
        if preset.fps:  # CASME II: clips numbered from an arbitrary camera frame, onset..offset
            sequence = f"{subject}_EP{take:02d}"
            onset = int(rng.integers(1, 300))
            apex_index = int(rng.integers(max(1, length // 4), max(2, (3 * length) // 4)))
            envelope = micro_envelope(length, apex_index)
            numbers = onset + np.arange(length)
            timing = {"onset": onset, "apex": onset + apex_index, "offset": onset + length - 1}
            plan = [(int(f), float(e), f"{subject}/{sequence}/img{f}.jpg") for f, e in zip(numbers, envelope)]
        else:  # CK+: S005/001/S005_001_00000001.png, frames from 1
            sequence = f"{subject}_{take:03d}"
            envelope = posed_envelope(length)
            timing = {}
            plan = [(k + 1, float(e), f"{subject}/{take:03d}/{sequence}_{k + 1:08d}.png") for k, e in enumerate(envelope)]

    apex_frame = max(plan, key=lambda p: p[1])[0]
    known = emotion in preset.classes
    common = {"label": preset.classes.index(emotion) if known else -1, "label_name": emotion if known else None, "subject": subject,
              "sequence": sequence, "split": split, "prototype": f"{emotion}/{variant}" if known else "independent",
              **identity_columns(identity), **nuisance_columns(nuisance)}
    for frame, scale, path in plan:
        aus = scale_aus(apex_aus, scale)
        frame_nuisance = replace(nuisance, seed=nuisance.seed + frame)
        image, au_masks = render_face(identity, aus, frame_nuisance, size, channels, masks, preset.framing)
        levels = sided_intensities(aus)
        row = {"path": path, "frame": frame, **common, "intensity_scale": scale,
               "is_apex": frame == apex_frame, **timing, **au_columns(levels)}
        values = np.array([levels[str(code)] for code in AU_CODES], np.float32)
        yield image, au_masks, row, values


def generate(preset: str, n: int, seed: int = 0, size: int = 48, channels: int = 1, masks: bool = False,
             progress: bool = True, frames: tuple[int, int] | None = None) -> Dataset:
    """Generate a SynthFACS dataset: n samples (sequences for posed/micro, images for wild).

    `frames` overrides the preset's (min, max) sequence length. With `masks`, extras["masks"]
    holds N x len(AU_CODES) x H x W uint8 (0/255) region masks in the order of extras["mask_aus"].
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown SynthFACS preset {preset!r}; choose one of {sorted(PRESETS)}")
    if n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n}")
    spec = PRESETS[preset]
    if frames is not None and (spec.frames is None or frames[0] < 3 or frames[1] < frames[0]):
        raise ValueError(f"frames={frames}: only sequence presets take it, as (min, max) with 3 <= min <= max")
    images, rows, values, mask_stack = [], [], [], []
    code_index = {code: k for k, code in enumerate(AU_CODES)}
    for index in tqdm(range(n), desc=f"synthfacs {preset}", unit="sample", disable=not progress):
        for image, au_masks, row, au_values in _sample_frames(spec, index, seed, size, channels, masks, frames):
            images.append(image)
            rows.append(row)
            values.append(au_values)
            if masks:
                stack = np.zeros((len(AU_CODES), size, size), np.uint8)
                for code, mask in au_masks.items():
                    stack[code_index[code]] = mask
                mask_stack.append(stack)

    manifest = pd.DataFrame(rows)
    first = list(REQUIRED_COLUMNS)
    manifest = manifest[first + [c for c in manifest.columns if c not in first]]
    extras: dict = {"au_values": np.stack(values), "au_value_codes": list(AU_CODES),
                    "generator": "synthfacs", "preset": preset, "seed": seed,
                    "subjects_known": spec.n_subjects is not None}
    if spec.fps:
        extras["fps"] = spec.fps
    if masks:
        extras["masks"] = np.stack(mask_stack)
        extras["mask_aus"] = list(AU_CODES)
    return Dataset(np.stack(images), manifest, spec.classes, f"synthfacs_{preset}", extras)
