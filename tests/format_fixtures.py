"""Small datasets for format round-trip tests, from SynthFACS when it works.

The format tests need Datasets shaped like each preset: "posed" (CK+-style
sequences ending at the apex, with AU intensities), "micro" (CASME II-style
clips with onset/apex/offset and AU sides), "wild" (FER2013-style single
48x48 faces with splits). SynthFACS renders them when importable; otherwise
simple OpenCV-drawn faces stand in so these tests never wait on it (set
FEROPS_FIXTURES=drawn to force them). The drawn fallback follows SynthFACS's
naming (subjects S001, sequences S001_001 / S001_EP01, FER2013 split names)
so the same assertions hold for both. `native_names` renames subjects/sequences the way the real dataset names
them, so write -> read can be compared for exact equality.
"""

from __future__ import annotations

import functools
import math
import os

import cv2
import numpy as np
import pandas as pd

from ferops.data.dataset import Dataset
from ferops.data.vocab import AU_CODES, CANONICAL, EMOTIONS, FER2013_CODES, au_column, au_intensity_column

CK_LABELS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
MICRO_LABELS = ("happiness", "disgust", "repression", "surprise", "others")
# AUs per emotion for the drawn fallback (roughly EMFACS prototypes).
PROTOTYPE_AUS = {"anger": (4, 5, 7, 23), "contempt": (14,), "disgust": (9, 15, 16), "fear": (1, 2, 4, 5, 20, 26),
                 "happiness": (6, 12), "sadness": (1, 4, 15), "surprise": (1, 2, 5, 26),
                 "repression": (14, 15), "others": (4, 7), "neutral": ()}
REQUIRED = {"posed": ("subject", "sequence", "frame"), "micro": ("subject", "sequence", "frame", "onset", "apex", "offset"),
            "wild": ("subject", "split")}


def draw_face(size: int = 64, canvas: int | None = None, smile: float = 0.0, brow: float = 0.0,
              shade: int = 185, angle: float = 0.0) -> np.ndarray:
    """A blurred cartoon face (gray, 2-D) that OpenCV's Haar cascades detect at >= ~150 px."""
    canvas = canvas or size
    img = np.full((canvas, canvas), 40, np.uint8)
    c, s = canvas // 2, size
    cv2.ellipse(img, (c, c), (int(s * 0.42), int(s * 0.55)), 0, 0, 360, shade, -1)
    for dx in (-1, 1):
        ex, ey = c + dx * int(s * 0.18), c - int(s * 0.1)
        cv2.ellipse(img, (ex, ey - int(s * (0.09 + 0.04 * brow))), (int(s * 0.1), max(int(s * 0.03), 1)),
                    0, 180, 360, 70, -1)
        cv2.ellipse(img, (ex, ey), (int(s * 0.09), max(int(s * 0.045), 1)), 0, 0, 360, 240, -1)
        cv2.circle(img, (ex, ey), max(int(s * 0.035), 1), 30, -1)
    cv2.ellipse(img, (c, c + int(s * 0.1)), (int(s * 0.05), max(int(s * 0.03), 1)), 0, 0, 360, 130, -1)
    mouth_h = max(int(s * (0.04 + 0.06 * abs(smile))), 1)
    start, end = (0, 180) if smile >= 0 else (180, 360)
    cv2.ellipse(img, (c, c + int(s * 0.27)), (int(s * 0.15), mouth_h), 0, start, end, 80, -1)
    img = cv2.GaussianBlur(img, (0, 0), max(s / 100, 0.5))
    if angle:
        rot = cv2.getRotationMatrix2D((c, c), angle, 1.0)
        img = cv2.warpAffine(img, rot, (canvas, canvas), borderMode=cv2.BORDER_REPLICATE)
    return img


def _image(size: int, channels: int, label: str, t: float, rng: np.random.Generator) -> np.ndarray:
    smile = {"happiness": 1.0, "sadness": -0.8, "disgust": -0.5, "surprise": 0.6}.get(label, 0.0) * t
    brow = {"surprise": 1.0, "fear": 0.8, "anger": -0.6}.get(label, 0.0) * t
    gray = draw_face(size, smile=smile, brow=brow, shade=int(rng.integers(150, 220)))
    if channels == 1:
        return gray[:, :, None]
    tint = np.array([1.0, 0.85, 0.7]) * rng.uniform(0.8, 1.0)
    return np.clip(gray[:, :, None] * tint, 0, 255).astype(np.uint8)


def _au_record(label: str, t: float, rng: np.random.Generator, unrated: bool = False) -> dict:
    active = PROTOTYPE_AUS[label]
    rec = {}
    for code in AU_CODES:
        on = code in active and t > 0
        rec[au_column(code)] = int(on)
        level = max(1, math.ceil(t * int(rng.integers(2, 6)))) if on else 0
        rec[au_intensity_column(code)] = math.nan if (on and unrated) else float(level)
    return rec


def _drawn(preset: str, n: int, seed: int, size: int, channels: int) -> Dataset:
    rng = np.random.default_rng(seed)
    images, rows = [], []
    if preset == "wild":
        for i in range(n):
            label = FER2013_CODES[i % 7]
            images.append(_image(size, channels, label, 1.0, rng))
            rows.append({"path": f"wild:{i}", "label_name": label, "subject": f"S{i + 1:05d}",
                         "sequence": f"{i + 1:06d}", "frame": 0,
                         "split": ("Training", "PublicTest", "PrivateTest")[i % 3], **_au_record(label, 1.0, rng)})
        classes = tuple(e for e in EMOTIONS if e != "contempt")
    else:
        labels = CK_LABELS if preset == "posed" else MICRO_LABELS
        seq_len = 4 if preset == "posed" else 6
        for s in range(n):
            label, subject = labels[s % len(labels)], f"S{s // 2 + 1:03d}"
            start = 1 if preset == "posed" else int(rng.integers(10, 90))
            onset, apex, offset = start, start + seq_len // 2, start + seq_len - 1
            for k in range(seq_len):
                frame = start + k
                t = k / (seq_len - 1) if preset == "posed" else 1 - abs(frame - apex) / (seq_len / 2)
                images.append(_image(size, channels, label, t, rng))
                sequence = f"{subject}_{s % 2 + 1:03d}" if preset == "posed" else f"{subject}_EP{s % 2 + 1:02d}"
                rec = {"path": f"{preset}:{s}:{k}", "label_name": label, "subject": subject,
                       "sequence": sequence, "frame": frame, "split": "train",
                       **_au_record(label, t, rng, unrated=(s % 3 == 1))}
                if preset == "micro":
                    rec.update(onset=onset, apex=apex, offset=offset)
                    for code in AU_CODES:
                        rec[f"{au_column(code)}_side"] = ("L" if s % 2 else "R") if code in (12, 14) else ""
                rows.append(rec)
        classes = EMOTIONS if preset == "posed" else MICRO_LABELS
    manifest = pd.DataFrame(rows)
    manifest.insert(1, "label", [classes.index(x) if x in classes else CANONICAL.index(x) for x in manifest["label_name"]])
    return Dataset(np.stack(images), manifest, classes, name=f"drawn-{preset}")


@functools.cache
def synthfacs_status() -> str:
    """'ok' if SynthFACS generates usable presets, else why not."""
    if os.environ.get("FEROPS_FIXTURES") == "drawn":
        return "drawn faces forced by FEROPS_FIXTURES=drawn"
    try:
        from ferops.data.synthfacs import generate
    except Exception as exc:  # not written yet, or broken mid-edit
        return f"SynthFACS not importable: {exc!r}"
    for preset, cols in REQUIRED.items():
        try:
            ds = generate(preset, 2, seed=0, size=32, channels=1, progress=False)
        except Exception as exc:
            return f"SynthFACS generate({preset!r}) failed: {exc!r}"
        missing = [c for c in cols if c not in ds.manifest.columns]
        if missing or not ds.au_codes:
            return f"SynthFACS {preset!r} manifest lacks {missing or 'AU columns'}"
    return "ok"


def make(preset: str, n: int = 6, seed: int = 0, size: int = 64, channels: int = 1) -> Dataset:
    """A small Dataset for `preset`, rendered by SynthFACS when it works, else drawn."""
    if synthfacs_status() == "ok":
        from ferops.data.synthfacs import generate

        return generate(preset, n, seed=seed, size=size, channels=channels, progress=False)
    return _drawn(preset, n, seed, size, channels)


def native_names(dataset: Dataset, fmt: str) -> Dataset:
    """Rename subjects/sequences as the real dataset does (CK+ S005 / S005_001, CASME sub01 / sub01_EP01_01)."""
    m = dataset.manifest.copy()
    subjects = {s: i + 1 for i, s in enumerate(dict.fromkeys(m["subject"].astype(str)))}
    if fmt == "ck+":
        m["subject"] = [f"S{subjects[s]:03d}" for s in m["subject"].astype(str)]
    elif fmt == "casme2":
        m["subject"] = [f"sub{subjects[s]:02d}" for s in m["subject"].astype(str)]
    else:
        return dataset
    seq_no = {}
    for subject, seq in zip(m["subject"], m["sequence"].astype(str)):
        seq_no.setdefault((subject, seq), sum(k[0] == subject for k in seq_no) + 1)
    fmt_seq = "{0}_{1:03d}" if fmt == "ck+" else "{0}_EP{1:02d}_01"
    m["sequence"] = [fmt_seq.format(subject, seq_no[(subject, seq)]) for subject, seq in zip(m["subject"], m["sequence"].astype(str))]
    return Dataset(dataset.images, m, dataset.classes, dataset.name, dataset.extras)


def face_on_canvas(face: int = 200, canvas: int = 480, angle: float = 0.0, channels: int = 1) -> np.ndarray:
    """One ~`face` px face in the middle of a plain canvas (H x W x channels), optionally rolled by `angle`.

    A SynthFACS render when it works, else the drawn face; both are detected by the Haar cascades.
    """
    if synthfacs_status() == "ok":
        from ferops.data.synthfacs import Identity, Nuisance, render_face

        img, _ = render_face(Identity(), {6: 3, 12: 4}, Nuisance(), size=face, channels=1)
        out = np.full((canvas, canvas), 90, np.uint8)
        lo = (canvas - face) // 2
        out[lo : lo + face, lo : lo + face] = img.reshape(face, face)
    else:
        out = draw_face(face, canvas=canvas)
    if angle:
        rot = cv2.getRotationMatrix2D((canvas / 2, canvas / 2), angle, 1.0)
        out = cv2.warpAffine(out, rot, (canvas, canvas), borderMode=cv2.BORDER_REPLICATE)
    return out[:, :, None] if channels == 1 else np.repeat(out[:, :, None], 3, axis=2)


def dataset_of(images, name: str = "faces") -> Dataset:
    """Wrap loose images as a Dataset (one subject per image, label neutral)."""
    images = np.stack(images)
    n = len(images)
    manifest = pd.DataFrame({"path": [f"img{i}.png" for i in range(n)], "label": 0, "label_name": "neutral",
                             "subject": [f"S{i:03d}" for i in range(n)], "sequence": [f"S{i:03d}_001" for i in range(n)],
                             "frame": 1, "split": "train"})
    return Dataset(images, manifest, EMOTIONS, name)


# The FER2013 folder copy as it circulates (train/ and test/, one folder per class, Training_/PrivateTest_
# names, no subject ids), seeded with the per-image faults real copies have. Maps path -> quarantine reason.
FER_FOLDER_FAULTS = {
    "train/angry/Training_900.jpg": "blank",  # flat grey fill
    "test/happy/PrivateTest_901.jpg": "blank",  # black frame
    "train/neutral/Training_902.jpg": "dark",
    "train/happy/Training_903.jpg": "bright",
    "test/neutral/PrivateTest_904.jpg": "high_contrast",  # 1-px stripes
    "train/angry/Training_123.jpg": "duplicate_of_test",  # same pixels as test/angry/PrivateTest_10131363.jpg
    "train/happy/Training_51.jpg": "duplicate",  # same pixels as train/happy/Training_50.jpg (read first)
}


def fer_folder_copy(root, per_class: tuple[int, int] = (4, 2)) -> dict[str, str]:
    """Write a small FER2013-shaped folder copy under `root`; returns FER_FOLDER_FAULTS (path -> reason).

    Clean faces are distinct drawn faces (mean ~140, std ~65, within params.yaml's validate ranges);
    per_class = (train, test) clean images for each of angry, happy, neutral. A notes.txt and a
    .DS_Store are left in class folders, as in copies passed around on macOS.
    """
    from pathlib import Path

    root = Path(root)
    rng = np.random.default_rng(7)

    def put(relative: str, image: np.ndarray) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        path.write_bytes(buf.tobytes())

    smiles = {"angry": -0.6, "happy": 1.0, "neutral": 0.0}
    number = 1000
    for split, count, prefix in (("train", per_class[0], "Training"), ("test", per_class[1], "PrivateTest")):
        for label, smile in smiles.items():
            for _ in range(count):
                number += 1
                face = draw_face(48, smile=smile, brow=float(rng.uniform(-1, 1)), shade=int(rng.integers(150, 220)),
                                 angle=float(rng.uniform(-8, 8)))
                put(f"{split}/{label}/{prefix}_{number}.jpg", face)
    face = draw_face(48, shade=185)
    put("train/angry/Training_900.jpg", np.full((48, 48), 128, np.uint8))
    put("test/happy/PrivateTest_901.jpg", np.zeros((48, 48), np.uint8))
    put("train/neutral/Training_902.jpg", (face * 0.12).astype(np.uint8))
    put("train/happy/Training_903.jpg", 255 - (face * 0.12).astype(np.uint8))
    stripes = np.zeros((48, 48), np.uint8)
    stripes[:, ::2] = 255
    put("test/neutral/PrivateTest_904.jpg", stripes)
    leaked = draw_face(48, smile=-0.6, shade=170, angle=3.0)
    put("train/angry/Training_123.jpg", leaked)
    put("test/angry/PrivateTest_10131363.jpg", leaked)
    repeated = draw_face(48, smile=1.0, shade=200, angle=-3.0)
    put("train/happy/Training_50.jpg", repeated)
    put("train/happy/Training_51.jpg", repeated)
    (root / "train/angry/notes.txt").write_text("downloaded from kaggle\n")
    (root / "test/happy/.DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return dict(FER_FOLDER_FAULTS)


# fer2013.csv as Kaggle ships it (Training rows, then PublicTest, then PrivateTest), with the exact copies the real
# file has: within the test split (PrivateTest twice, PublicTest and PrivateTest) and across train and test.
# Data row path -> quarantine reason under validate.test_duplicates: keep (FLAGS are kept, the others removed).
FER_CSV_COPIES = {
    "fer2013.csv:22": "duplicate",  # Training copy of row 1 (the first is kept)
    "fer2013.csv:23": "duplicate_of_test",  # Training copy of PublicTest row 31 (the held-out copy is kept)
    "fer2013.csv:40": "duplicate_in_test",  # PrivateTest copy of PrivateTest row 39
    "fer2013.csv:41": "duplicate_in_test",  # PrivateTest copy of PublicTest row 31
    "fer2013.csv:42": "blank",  # a black PrivateTest frame: quarantined whatever test_duplicates says
}
FER_CSV_KEPT_COPY = {"fer2013.csv:22": "fer2013.csv:1", "fer2013.csv:23": "fer2013.csv:31",
                     "fer2013.csv:40": "fer2013.csv:39", "fer2013.csv:41": "fer2013.csv:31"}
FER_CSV_SPLITS = {"Training": 23, "PublicTest": 8, "PrivateTest": 11}  # rows per Usage, 42 in all


def fer_csv_with_test_copies(root) -> dict[str, str]:
    """Write root/fer2013.csv: one distinct drawn face per class and row (3 Training, 1 PublicTest, 1 PrivateTest
    per FER2013 class), plus the copies and the blank frame of FER_CSV_COPIES. Returns FER_CSV_COPIES."""
    from pathlib import Path

    root = Path(root)
    rng = np.random.default_rng(11)
    smiles = {"anger": -0.6, "disgust": -0.3, "fear": -0.1, "happiness": 1.0, "sadness": -0.8, "surprise": 0.4,
              "neutral": 0.0}
    code = {name: c for c, name in FER2013_CODES.items()}

    def face(label: str) -> np.ndarray:
        return draw_face(48, smile=smiles[label], brow=float(rng.uniform(-1, 1)), shade=int(rng.integers(150, 220)),
                         angle=float(rng.uniform(-8, 8)))

    rows: list[tuple[str, np.ndarray, str]] = []  # (label, 48x48 image, Usage)

    def clean(usage: str, per_class: int) -> None:
        rows.extend((label, face(label), usage) for _ in range(per_class) for label in smiles)

    clean("Training", 3)  # rows 1..21
    shared, twin = face("happiness"), face("surprise")
    rows += [(rows[0][0], rows[0][1], "Training"), ("happiness", shared, "Training")]  # rows 22, 23
    clean("PublicTest", 1)  # rows 24..30
    rows.append(("happiness", shared, "PublicTest"))  # row 31
    clean("PrivateTest", 1)  # rows 32..38
    rows += [("surprise", twin, "PrivateTest"), ("surprise", twin, "PrivateTest"),  # rows 39, 40
             ("happiness", shared, "PrivateTest"), ("neutral", np.zeros((48, 48), np.uint8), "PrivateTest")]  # 41, 42
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fer2013.csv", "w") as f:
        f.write("emotion,pixels,Usage\n")
        for label, image, usage in rows:
            f.write(f"{code[label]},{' '.join(map(str, image.ravel()))},{usage}\n")
    return dict(FER_CSV_COPIES)
