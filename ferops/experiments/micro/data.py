"""The clips the micro stage reads: SynthFACS `micro` rendered in memory, or a CASME II copy on disk.

Two views of every clip, both cut with the same crop (found on the onset
frame): the CNN+LSTM's (`micro.clip`: the paper's five key frames, or T
frames onset->offset) and LBP-TOP's (`micro.lbp_top.length` frames
onset->offset, the temporal resolution LBP-TOP needs for its XT/YT planes).
CASME II is read clip by clip, only the frames asked for, cropped at once
(ferops.data.formats.casme2.read_casme2_clips), so memory stays at the size
of the crops whatever the frames' size.

`data_hash` names what was read, for the registry's comparability key: the
DVC-style content hash of the raw CASME II folder, or for SynthFACS the md5
of the rendered clips, labels and subjects (same params -> same hash).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial

import numpy as np

from ferops.config import Params
from ferops.data.clips import clips_from_frames, crop_clip, pick_frames
from ferops.data.dataset import Dataset
from ferops.errors import FeropsError

KEY_LENGTH = 5


@dataclass
class MicroData:
    clips: Dataset  # N x T x H x W x C, the CNN+LSTM's view
    lbp_clips: Dataset  # N x L x H x W x 1, LBP-TOP's view (same clips, same order)
    name: str
    data_hash: str
    source: str  # where it came from, in words (a path, or the SynthFACS params)


def _check(params: Params) -> None:
    clip = params.micro.clip
    if clip.frames == "key" and clip.length != KEY_LENGTH:
        raise FeropsError(f"micro.clip.length: {clip.length} with frames: key; the key frames are "
                          f"{KEY_LENGTH} (first, onset, apex, offset, last): set length: {KEY_LENGTH}")


def content_hash(*clip_sets: Dataset) -> str:
    digest = hashlib.md5()
    for ds in clip_sets:
        digest.update(np.ascontiguousarray(ds.images).tobytes())
        digest.update("|".join(ds.manifest["label_name"].astype(str)).encode())
        digest.update("|".join(ds.subjects).encode())
    return digest.hexdigest()


def _synthfacs(params: Params) -> MicroData:
    from ferops.data.synthfacs_dataset import synthfacs_dataset

    mp, clip = params.micro, params.micro.clip
    sp = mp.data.synthfacs
    frames = synthfacs_dataset("micro", sp.n, seed=sp.seed, size=clip.size, channels=clip.channels, masks=False)
    views = dict(size=clip.size, detect_faces=mp.data.detect_faces)
    clips = clips_from_frames(frames, clip.frames, clip.length, channels=clip.channels, **views)
    lbp = clips_from_frames(frames, "span", mp.lbp_top.length, channels=1, **views)
    name = f"synthfacs_micro_n{sp.n}_seed{sp.seed}"
    return MicroData(clips, lbp, name, content_hash(clips, lbp), f"SynthFACS micro, n={sp.n}, seed={sp.seed}")


def _casme2(params: Params) -> MicroData:
    from ferops.data.formats.casme2 import read_casme2_clips
    from ferops.tracking.lineage import data_hash

    mp, clip = params.micro, params.micro.clip
    detect = mp.data.detect_faces

    def read(mode: str, length: int, channels: int) -> Dataset:
        pick = partial(_pick, mode=mode, length=length)
        crop = partial(_crop, size=clip.size, channels=channels, detect=detect)
        return read_casme2_clips(mp.data.raw_dir, pick, crop)

    clips = read(clip.frames, clip.length, clip.channels)
    lbp = read("span", mp.lbp_top.length, 1)
    return MicroData(clips, lbp, "casme2", data_hash(mp.data.raw_dir), mp.data.raw_dir)


def _pick(available, onset, apex, offset, mode: str, length: int) -> list[int]:
    return pick_frames(available, onset, apex, offset, mode, length)


def _crop(frames, reference: int, size: int, channels: int, detect: bool):
    return crop_clip(frames, reference, size, channels, detect)


def load_micro(params: Params) -> MicroData:
    """Both views of the clips named by `micro.data`, in the same order, checked to be the same clips."""
    _check(params)
    data = _synthfacs(params) if params.micro.data.format == "synthfacs" else _casme2(params)
    if list(data.clips.sequences) != list(data.lbp_clips.sequences):
        raise FeropsError(f"{data.name}: the CNN+LSTM and LBP-TOP views hold different clips")
    return data
