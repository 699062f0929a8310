"""AU visibility at 48 px: how many pixels does each SynthFACS Action Unit change, per intensity?

Why (issue 25, item 2): on the default `domains.au` data the AU detector reaches AUROC 0.95+ for AU1, AU12
and AU26 but only ~0.52-0.58 for AU14, L14, R14, AU17, AU24 and 0.63-0.67 for AU16, AU23, even with a bigger
model. An AU that is labelled present but changes almost no pixel of the 48x48 image is a labelling defect,
not a modelling problem: no detector can find it. This script measures, for every AU target the AU experiment
learns and every FACS intensity A..E (1..5), what the AU alone does to the pixels.

How: each face is one `domains.au` image replayed exactly (identity, pose, light, blur, sensor-noise seed as
`synthfacs_dataset("au", ...)` draws them for sample i; `seed` is params.yaml `seed`), rendered twice with the
same nuisance, once neutral (no AU) and once with one AU at one intensity. The sensor noise comes from the
nuisance seed, so both renders carry the very same noise and their difference is the AU and nothing else
(neutral vs neutral is exactly 0; tests/test_au_visibility.py checks it). The crop is the domain's own
(`ck+`: CK+48's eye-aligned brow-to-chin crop, 48x48 grey, what `preprocess.image_size` feeds the network).

Columns, each a mean over the faces (grey levels 0..255):
- `mean_abs_delta`: mean |AU face - neutral face| over the whole 48x48 crop;
- `pct_px_over`: share of the crop's pixels (%) changed by more than `--threshold` grey levels (default 4,
  twice the largest sensor-noise sigma of the studio profile, 2.0), and `px_over`, the same as a pixel count;
- `pct_px_strong`: share (%) changed by more than 4x the threshold (16 grey levels): the high-contrast part;
- `max_abs_delta`: the largest change on the face (per face, then averaged over faces);
- `region_mean_abs_delta`: mean |delta| inside the AU's own region mask (where the labels say it acts);
- `ctx_mean_abs_delta`, `ctx_pct_px_over`: the same AU added to the face as domains.au drew it, i.e. on top
  of the other AUs drawn for that image (each on with probability 0.3, about 5.7 per face), against that face
  without the AU: what the detector actually has to see, where other AUs may move or cover the same parts;
- `mean_abs_delta`, `pct_px_over` and `max_abs_delta` again (`*_native`), rendered at 144 px, the 48 px
  render's drawing canvas (it draws at 3x and area-downsamples), to show whether 48 px is what hides an AU.

Verdict (from `pct_px_over`, at 48 px and at 144 px alike, since a share does not depend on the size):
- "visible": at least 1% of the crop (23 px at 48 px, about one 5x5 kernel of the paper CNN) changes by more
  than the threshold;
- "invisible at 48 px" (at 144 px: "invisible"): under 0.25% (fewer than 6 px at 48 px);
- "faint": in between.

Run (about a minute at the defaults on 2 cores; one thread):

    nice -n 19 .venv/bin/python benchmarks/au_visibility.py [--identities 50] [--seed 42] [--threshold 4]
        [--out outputs/au_visibility.csv]
    nice -n 19 .venv/bin/python benchmarks/au_visibility.py --labels 300   # the labels as drawn (label_visibility)

Measurement only: the renderer and the labels are unchanged. It replays the domain's draws through
`ferops.data.synthfacs.presets._identity` and `_rng` (private: the only way to reproduce sample i exactly).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ferops.data.synthfacs.framing import supersampling
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.nuisance import Nuisance
from ferops.data.synthfacs.presets import PRESETS, _identity, _rng
from ferops.data.synthfacs.prototypes import sample_independent_aus
from ferops.data.synthfacs.renderer import render_face
from ferops.data.vocab import AU_CODES, UNILATERAL

# ## The targets: what the AU experiment learns on domains.au (Dataset.au_labels): 19 bilateral codes + L/R 12, 14
TARGETS: tuple[str, ...] = tuple(f"AU{code}" for code in AU_CODES) + UNILATERAL
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)  # FACS A..E; domains.au draws intensities uniform in 1..5
GRADES = "0ABCDE"                          # intensity 0..5 as FACS writes it
SIZE = 48                                  # params.yaml preprocess.image_size / domains.au.size
NATIVE = SIZE * supersampling(SIZE)        # 144: the canvas the 48 px render draws on
THRESHOLD = 4.0                            # grey levels: twice the studio profile's largest noise sigma
VISIBLE_PCT = 1.0                          # >= this share (%) of pixels over the threshold: visible
INVISIBLE_PCT = 0.25                       # < this share: invisible
STRONG = 4                                 # pct_px_strong: share of pixels changed by more than 4x the threshold
PRESET = PRESETS["au"]


# ## One domains.au face, replayed
def domain_face(index: int, seed: int = 42) -> tuple[Identity, Nuisance, dict[str, float]]:
    """(identity, nuisance, drawn AUs) of `domains.au` sample `index`, exactly as presets._sample_frames draws them.

    The AU stills are single frames numbered 0, so the frame's nuisance seed is the sample's own.
    """
    _, identity = _identity(seed, PRESET, index)
    rng = _rng(seed, PRESET, 1, index)
    aus = sample_independent_aus(rng, PRESET.au_prevalence)
    nuisance = Nuisance.sample(rng, PRESET.nuisance_profile)
    return identity, nuisance, aus  # _sample_frames adds the frame number (0) to the nuisance seed


def render(identity: Identity, nuisance: Nuisance, aus: dict, size: int = SIZE,
           masks: bool = False) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """One grey face in the domain's crop, as float32 size x size (and its AU region masks)."""
    image, regions = render_face(identity, aus, nuisance, size, 1, masks, PRESET.framing)
    return image[..., 0].astype(np.float32), regions


def activation(target: str, level: float) -> dict[str, float]:
    """The renderer's AU spec for one target: "AU14" -> {"14": level} (both sides), "L14" -> {"L14": level}."""
    return {target.removeprefix("AU"): float(level)}


def without(aus: dict[str, float], target: str) -> dict[str, float]:
    """`aus` with every key of the target's code removed (AU14, L14 and R14 all drop "14", "L14", "R14")."""
    code = target.removeprefix("AU").lstrip("LR")
    return {key: value for key, value in aus.items() if key.lstrip("LR") != code}


def verdict(pct_over: float, native: bool = False) -> str:
    if pct_over >= VISIBLE_PCT:
        return "visible"
    if pct_over >= INVISIBLE_PCT:
        return "faint"
    return "invisible" if native else f"invisible at {SIZE} px"


# ## The measurement
def measure(identities: int = 50, seed: int = 42, targets=TARGETS, levels=LEVELS, threshold: float = THRESHOLD,
            native: int | None = NATIVE) -> pd.DataFrame:
    """One row per (AU target, intensity): pixel change against the same face's neutral render, mean over faces.

    `native=None` skips the 144 px columns.
    """
    keys = [(t, lv) for t in targets for lv in levels]
    stats: dict[tuple, list[list[float]]] = {k: [] for k in keys}
    for index in range(identities):
        identity, nuisance, drawn = domain_face(index, seed)
        neutral = render(identity, nuisance, {})[0]
        neutral_big = render(identity, nuisance, {}, native)[0] if native else None
        others = {}  # per target: this face's drawn AUs without it, and their render (the in-context baseline)
        for target, level in keys:
            spec = activation(target, level)
            face, regions = render(identity, nuisance, spec, masks=True)
            delta = np.abs(face - neutral)
            # the one active AU's region mask (a sided AU: its side only)
            region = next(iter(regions.values())) > 0 if regions else np.zeros_like(delta, bool)
            if target not in others:
                rest = without(drawn, target)
                others[target] = rest, render(identity, nuisance, rest)[0]
            rest, base = others[target]
            ctx = np.abs(render(identity, nuisance, {**rest, **spec})[0] - base)
            in_region = delta[region].sum() / max(int(region.sum()), 1)  # no region (the AU off): 0
            row = [delta.mean(), 100 * (delta > threshold).mean(), (delta > threshold).sum(),
                   100 * (delta > STRONG * threshold).mean(), delta.max(), in_region,
                   ctx.mean(), 100 * (ctx > threshold).mean()]
            if native:
                big = np.abs(render(identity, nuisance, spec, native)[0] - neutral_big)
                row += [big.mean(), 100 * (big > threshold).mean(), big.max()]
            stats[(target, level)].append(row)

    columns = ["mean_abs_delta", "pct_px_over", "px_over", "pct_px_strong", "max_abs_delta", "region_mean_abs_delta",
               "ctx_mean_abs_delta", "ctx_pct_px_over"]
    if native:
        columns += ["mean_abs_delta_native", "pct_px_over_native", "max_abs_delta_native"]
    rows = []
    for (target, level), values in stats.items():
        mean = dict(zip(columns, np.array(values, float).mean(axis=0)))
        grade = GRADES[int(level)] if float(level).is_integer() else f"{level:g}"
        row = {"au": target, "level": level, "grade": grade, "faces": identities, **mean,
               "verdict": verdict(round(mean["pct_px_over"], 2))}  # on the value as printed
        if native:
            row["verdict_native"] = verdict(round(mean["pct_px_over_native"], 2), native=True)
        rows.append(row)
    return pd.DataFrame(rows).round(3)


def label_visibility(identities: int = 300, seed: int = 42, threshold: float = THRESHOLD) -> pd.DataFrame:
    """One row per AU target: how visible its present labels are on their own faces, as domains.au drew them.

    For every AU a face carries, the face as drawn against the same face without that AU (its drawn
    intensity, the other drawn AUs on): the share of the crop it changes by more than `threshold`.
    An AU whose labels are often below INVISIBLE_PCT there is hidden by the AUs it shares a face with
    (a labelling defect); one whose labels are visible but still poorly detected is a learning problem.
    """
    rows = []
    for index in range(identities):
        identity, nuisance, drawn = domain_face(index, seed)
        face = render(identity, nuisance, drawn)[0]
        for key in drawn:
            target = key if key[0] in "LR" else f"AU{key}"
            delta = np.abs(face - render(identity, nuisance, without(drawn, target))[0])
            rows.append({"au": target, "pct": 100 * float((delta > threshold).mean())})
    pct = pd.DataFrame(rows).groupby("au")["pct"]
    table = pd.DataFrame({"labels": pct.size(), "median_pct_px_over": pct.median(),
                          "share_invisible": pct.apply(lambda v: float((v < INVISIBLE_PCT).mean())),
                          "share_faint": pct.apply(lambda v: float(((v >= INVISIBLE_PCT) & (v < VISIBLE_PCT)).mean()))})
    return table.reindex([t for t in TARGETS if t in table.index]).reset_index().round(3)


# ## Printing
# (header, column, format): the 48 px columns, then the native ones when measured; text left, numbers right
COLUMNS_48 = (("AU", "au", "<5"), ("int", "grade", ">3"), ("mean|d|", "mean_abs_delta", "8.3f"),
              ("%px>T", "pct_px_over", "7.2f"), ("px>T", "px_over", "6.1f"), ("%px>4T", "pct_px_strong", "7.2f"),
              ("max|d|", "max_abs_delta", "7.1f"), ("region", "region_mean_abs_delta", "7.2f"),
              ("ctx|d|", "ctx_mean_abs_delta", "7.3f"), ("ctx%px", "ctx_pct_px_over", "7.2f"),
              ("verdict 48 px", "verdict", "<19"))
COLUMNS_NATIVE = (("mean|d|", "mean_abs_delta_native", "8.3f"), ("%px>T", "pct_px_over_native", "7.2f"),
                  ("max|d|", "max_abs_delta_native", "7.1f"), (f"verdict {NATIVE} px", "verdict_native", "<16"))


def print_table(table: pd.DataFrame) -> None:
    spec = COLUMNS_48 + (COLUMNS_NATIVE if "verdict_native" in table.columns else ())

    def header(head: str, fmt: str) -> str:
        width = fmt.lstrip("<>").split(".")[0]
        return f"{head:{'<' if fmt[0] == '<' else '>'}{width}}"

    print(" ".join(header(head, fmt) for head, _, fmt in spec).rstrip())
    for row in table.to_dict("records"):
        print(" ".join(f"{row[col]:{fmt}}" for _, col, fmt in spec).rstrip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=50,
                    help="domains.au images 0..N-1, subjects S001.. (default 50; past 100, subjects repeat)")
    ap.add_argument("--seed", type=int, default=42, help="the domain's seed (params.yaml seed, default 42)")
    ap.add_argument("--threshold", type=float, default=THRESHOLD, help="grey levels a pixel must change by")
    ap.add_argument("--no-native", action="store_true", help=f"skip the {NATIVE} px columns")
    ap.add_argument("--out", default=None, help="CSV path (default outputs/au_visibility.csv)")
    ap.add_argument("--labels", type=int, metavar="N", help="instead: each AU's present labels on the first N "
                    "domains.au faces, as drawn (label_visibility), printed only")
    args = ap.parse_args()
    cv2.setNumThreads(1)  # one core: the renders are small and a shared machine stays responsive
    if args.labels:
        start = time.perf_counter()
        table = label_visibility(args.labels, args.seed, args.threshold)
        print(f"{args.labels} domains.au faces (seed {args.seed}), each present AU against its face without it, "
              f"threshold {args.threshold:g} grey levels, {time.perf_counter() - start:.1f} s")
        print(table.to_string(index=False))
        return
    if args.out is None:
        out = Path("outputs/au_visibility.csv")
        out.parent.mkdir(parents=True, exist_ok=True)
    else:
        out = Path(args.out)
        if not out.parent.is_dir():
            raise SystemExit(f"--out {out}: folder {out.parent} does not exist")

    start = time.perf_counter()
    table = measure(args.identities, args.seed, threshold=args.threshold, native=None if args.no_native else NATIVE)
    print(f"{args.identities} domains.au faces (seed {args.seed}), {len(table)} (AU, intensity) rows, "
          f"threshold {args.threshold:g} grey levels, {time.perf_counter() - start:.1f} s")
    print(f"T = {args.threshold:g} grey levels; native = {NATIVE} px")
    print_table(table)
    counts = table["verdict"].value_counts().to_dict()
    print("verdicts at 48 px: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    table.to_csv(out, index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
