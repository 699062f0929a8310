"""ferops' video path against the peer tools' way, on a deterministic SynthFACS video: speed, memory, agreement.

Builds a 640x480, 30 fps mp4 with OpenCV's VideoWriter (SynthFACS faces composited onto varied backgrounds,
shots of 30 frames, every third shot with two faces drifting across it), then in this one process:

- ferops: ferops.serving.video.stream (decode, detection on a 320 px copy and batched inference overlapping,
  the faces of a 16-frame window in one forward pass per model);
- peer-style baseline, as `fer` and deepface work: decode, detect (the same detector and settings, so the
  same boxes and eye-aligned crops), then one `model.predict` per face per frame, one step after another.
  (Those tools also detect on the full frame; ferops' 320 px detection is not credited in the ratio.)

It prints both frames/s (target: ferops >= 3x), the share of faces both paths find whose labels agree
(target >= 99%: same model, same crops), and the peak RSS of `ferops predict`'s code path on this video
and on one 4x longer, each in a fresh child process (target: within 10%).

Precision: ferops' path again with the same weights in float32 and in the policy `auto` picks on this
machine (ferops.train.precision.with_policy, as every load does), interleaved, best of 2: frames/s ratio
(target >= 1.7x where auto picks bf16) and the share of faces whose labels agree (target >= 99%); then the
models' own share of the float32 path's time, which bounds what any precision can gain on it.

Model: --model URI (a fer-pipeline bundle or an emotion model) when given; otherwise the paper CNN at
params.yaml model.width with seeded random weights (speed depends on the architecture, not the weights).

Run: .venv/bin/python benchmarks/video.py [frames] [--model URI]   (default 600 frames)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def analyzer_for(model: str | None):
    """The Analyzer both paths use: the given model, or the seeded paper CNN with params.yaml serving settings."""
    from ferops.config import load_params
    from ferops.serving.analyzer import Analyzer, Head, Settings

    params = load_params(ROOT / "params.yaml")
    if model:
        from ferops.predict import load_analyzer

        return load_analyzer(model, params.serving)
    import keras

    from ferops.data.vocab import EMOTIONS
    from ferops.models import build_cnn

    keras.utils.set_random_seed(0)
    cnn = build_cnn(params.model, (params.preprocess.image_size,) * 2 + (params.preprocess.channels,), len(EMOTIONS))
    return Analyzer(Head(cnn, EMOTIONS, "p_"), None, Settings.from_params(params.serving))


def peak_mb() -> float:
    """This process's peak RSS (VmHWM: getrusage's ru_maxrss survives exec and would report the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no /proc/self/status: peak RSS is measured on Linux only")


def run_ferops(analyzer, video: Path) -> tuple[list[dict], float, int]:
    """ferops' streamed path: rows, seconds, frames."""
    from ferops.serving.video import stream, video_frames

    s = analyzer.settings
    rows, frames, start = [], 0, time.perf_counter()
    for faces, found in stream(analyzer, video_frames(video, 1), detect=True, max_faces=s.max_faces,
                               window=s.window, queue=s.queue):
        rows += found
        frames += 1
    return rows, time.perf_counter() - start, frames


def in_policy(analyzer, policy: str):
    """The same analyzer with every model rebuilt to compute in `policy` (same weights)."""
    from dataclasses import replace

    from ferops.serving.analyzer import Analyzer
    from ferops.train.precision import with_policy

    heads = [replace(h, model=with_policy(h.model, policy)) for h in analyzer.heads]
    return Analyzer(heads[0], heads[1] if len(heads) > 1 else None, analyzer.settings, analyzer.detector)


def compare_precisions(analyzer, warm: Path, video: Path) -> dict:
    """ferops' path in float32 and in auto's policy, interleaved: frames/s of each and label agreement."""
    from ferops.train.precision import resolve

    auto = resolve("auto")
    sides = {"float32": in_policy(analyzer, "float32"), auto: in_policy(analyzer, auto)}
    if auto == "float32":
        sides["mixed_bfloat16 (emulated here)"] = in_policy(analyzer, "mixed_bfloat16")
    best, rows, frames = {}, {}, 0
    for side in sides.values():
        run_ferops(side, warm)
    for _ in range(2):
        for name, side in sides.items():
            rows[name], seconds, frames = run_ferops(side, video)
            best[name] = max(best.get(name, 0.0), frames / seconds)
    for name in sides:
        matched, same = agreement(rows[name], rows["float32"])
        print(f"ferops in {name:30s}: {best[name]:6.1f} frames/s, {best[name] / best['float32']:.2f}x float32; "
              f"labels as float32 on {same}/{matched} faces ({same / max(matched, 1):.2%})")
    print(f"auto picked {auto} on this machine"
          + (" (target >= 1.7x float32)" if auto != "float32" else ": no bf16 speed-up to take here"))
    faces = len(rows["float32"])
    share = {name: model_seconds(side, faces) * best["float32"] / frames for name, side in sides.items()}
    print(f"the models alone on those {faces} faces (batches of 64, best of 2): {share['float32']:.1%} of the float32 "
          f"path's time in float32, {share[auto]:.1%} in {auto}; a path whose models took no time at all would be "
          f"{1 / (1 - share['float32']):.2f}x float32 (the bound precision can give)")
    return {"auto": auto, "fps": best, "model_share": share}


def model_seconds(analyzer, faces: int, batch: int = 64) -> float:
    """Seconds the analyzer's models take on `faces` crops alone, in batches (best of 2): no decode, no detection."""
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        for head in analyzer.heads:
            crops = np.zeros((batch, *head.model.input_shape[1:]), np.float32)
            for done in range(0, faces, batch):
                head.model.predict_on_batch(crops[: min(batch, faces - done)])
        best = min(best, time.perf_counter() - start)
    return best


def run_baseline(analyzer, video: Path) -> tuple[list[dict], float, int]:
    """Peer-style: decode, detect, then one model.predict per face per frame, one step after another."""
    model, labels = analyzer.heads[0].model, analyzer.heads[0].labels
    capture = cv2.VideoCapture(str(video))
    rows, frames, start = [], 0, time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        faces = analyzer.find(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), str(video), frames, True,
                              analyzer.settings.max_faces)  # the same detector and crop as ferops
        crops = faces.crops[analyzer.heads[0].input_shape]
        for box, crop in zip(faces.boxes, crops):
            p = model.predict(crop[None].astype(np.float32), verbose=0)[0]
            rows.append({"frame": frames, "x": box[0], "y": box[1], "w": box[2], "h": box[3],
                         "prediction": labels[int(np.argmax(p))]})
        frames += 1
    capture.release()
    return rows, time.perf_counter() - start, frames


def _iou(a: dict, b: dict) -> float:
    x0, y0 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x1, y1 = min(a["x"] + a["w"], b["x"] + b["w"]), min(a["y"] + a["h"], b["y"] + b["h"])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a["w"] * a["h"] + b["w"] * b["h"] - inter)


def agreement(ours: list[dict], theirs: list[dict]) -> tuple[int, int]:
    """(faces found by both paths, of which same top label): faces matched within a frame by box overlap."""
    by_frame: dict[int, list[dict]] = {}
    for row in theirs:
        by_frame.setdefault(row["frame"], []).append(row)
    matched = same = 0
    for row in ours:
        best = max(by_frame.get(row["frame"], []), key=lambda r: _iou(row, r), default=None)
        if best is not None and _iou(row, best) > 0.5:
            matched += 1
            same += best["prediction"] == row["prediction"]
    return matched, same


def child(video: str, model: str | None) -> dict:
    """Fresh process: `ferops predict`'s code path (streamed, CSV written as it goes) on one video; peak RSS."""
    from ferops.predict import predict

    analyzer = analyzer_for(model)
    after_load = peak_mb()
    with tempfile.TemporaryDirectory() as tmp:
        report = predict(analyzer, [video], out=str(Path(tmp) / "rows.csv"), progress=False)
    return {"frames": report.frames, "faces": report.faces, "seconds": round(report.seconds, 1),
            "peak_rss_mb_after_load": round(after_load), "peak_rss_mb": round(peak_mb())}


def main(frames: int, model: str | None) -> dict:
    from ferops.serving.synthetic import write_video

    with tempfile.TemporaryDirectory() as tmp:
        short, long = Path(tmp) / "short.mp4", Path(tmp) / "long.mp4"
        start = time.perf_counter()
        counts = write_video(short, frames)
        write_video(long, frames * 4)
        print(f"videos: {frames} and {frames * 4} frames of 640x480 at 30 fps, {sum(counts)} faces in the first "
              f"({sum(c == 2 for c in counts)} frames with 2 faces); written in {time.perf_counter() - start:.0f} s")
        analyzer = analyzer_for(model)
        print(f"model: {model or 'paper CNN (params.yaml model.width), seeded random weights'}; "
              f"{cv2.getNumberOfCPUs()} CPU cores; detection at {analyzer.settings.detect_width} px, "
              f"window {analyzer.settings.window} frames")
        warm = Path(tmp) / "warm.mp4"
        write_video(warm, 30, seed=1)
        run_ferops(analyzer, warm)  # warm-up of both paths: graph tracing, first-call allocations
        run_baseline(analyzer, warm)
        ours, t_ours, n = run_ferops(analyzer, short)
        theirs, t_theirs, _ = run_baseline(analyzer, short)
        fps_ours, fps_theirs = n / t_ours, n / t_theirs
        print(f"ferops: {fps_ours:.1f} frames/s ({len(ours)} faces); peer-style per-face predict: "
              f"{fps_theirs:.1f} frames/s ({len(theirs)} faces); speed-up {fps_ours / fps_theirs:.2f}x (target >= 3x)")
        matched, same = agreement(ours, theirs)
        print(f"labels agree on {same}/{matched} faces both paths found ({same / max(matched, 1):.2%}, "
              f"target >= 99%)")
        precisions = compare_precisions(analyzer, warm, short)
        memory = {}
        for name, path in (("1x", short), ("4x", long)):
            cmd = [sys.executable, __file__, "--child", str(path)] + (["--model", model] if model else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            memory[name] = json.loads(out.stdout.strip().splitlines()[-1])
            m = memory[name]
            print(f"ferops predict on the {name} video ({m['frames']} frames, {m['faces']} faces, {m['seconds']} s): "
                  f"peak RSS {m['peak_rss_mb']} MB (after loading the model {m['peak_rss_mb_after_load']} MB)")
        ratio = memory["4x"]["peak_rss_mb"] / memory["1x"]["peak_rss_mb"]
        print(f"peak RSS 4x / 1x video: {ratio:.3f} (target <= 1.10)")
        return {"fps_ferops": fps_ours, "fps_baseline": fps_theirs, "agreement": same / max(matched, 1),
                "rss_ratio": ratio, "memory": memory, "precisions": precisions}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", nargs="?", type=int, default=600, help="frames in the short video (default 600)")
    parser.add_argument("--model", help="a fer-pipeline bundle or an emotion model URI (default: seeded paper CNN)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model)))
    else:
        main(args.frames, args.model)
