"""Peak memory of reading a CASME II-sized copy the way the micro stage does; the budget is 2 GB.

Writes SynthFACS `micro` clips in the CASME II layout at CASME II's frame size
(640x480 colour JPEGs, CASME2_RAW_selected/subNN/EPxx/imgN.jpg + coding sheet),
then reads it in a fresh process exactly as `ferops micro` does with
micro.data.format: casme2 (both views: the CNN+LSTM's key frames and LBP-TOP's
onset->offset frames, one face crop per clip) and prints that process's peak
RSS. For contrast it also reads every frame with read_casme2(frames="all",
size=48) (resized as decoded) and states what the old all-frames, full-size
read would have held.

Run: .venv/bin/python benchmarks/casme2_memory.py [clips]   (default 100; needs ~1.5 GB of temp disk)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

BUDGET_MB = 2048
HEIGHT, WIDTH = 480, 640


def write_fixture(root: Path, clips: int, seed: int = 0) -> int:
    """SynthFACS micro written as CASME II, every frame re-encoded at 640x480; returns the frame count."""
    from ferops.data.formats.casme2 import FRAMES_DIR, write_casme2
    from ferops.data.synthfacs_dataset import synthfacs_dataset

    small = synthfacs_dataset("micro", clips, seed=seed, size=96, channels=3, masks=False)
    write_casme2(small, root)
    frames = sorted((root / FRAMES_DIR).glob("*/*/*.jpg"))
    for path in frames:  # the face fills the middle 480x480, as in CASME II's frames
        face = cv2.resize(cv2.imread(str(path)), (HEIGHT, HEIGHT), interpolation=cv2.INTER_CUBIC)
        frame = cv2.copyMakeBorder(face, 0, 0, (WIDTH - HEIGHT) // 2, (WIDTH - HEIGHT) // 2, cv2.BORDER_REPLICATE)
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return len(frames)


def peak_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across
    exec, so a child started from this (large) parent would report the parent's size at fork."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KiB on Linux, bytes on macOS


def read(root: str, mode: str) -> dict:
    """Runs in the child process: imports, then one read; reports peak RSS before and after."""
    from ferops.config import load_params

    before = peak_mb()
    start = time.perf_counter()
    if mode == "micro":
        from ferops.experiments.micro.data import load_micro

        params = load_params("params.yaml", {"micro": {"data": {"format": "casme2", "raw_dir": root,
                                                                "detect_faces": True}}})
        data = load_micro(params)
        shapes = [list(data.clips.images.shape), list(data.lbp_clips.images.shape)]
        found = float((data.clips.manifest["faces_found"] > 0).mean())
        extra = {"faces_found_share": found, "dropped": data.clips.extras["dropped"]}
    else:
        from ferops.data.formats.casme2 import CLASSES_ALL, read_casme2

        ds = read_casme2(root, frames="all", size=48, channels=1, classes=CLASSES_ALL)
        shapes, extra = [list(ds.images.shape)], {}
    return {"mode": mode, "seconds": round(time.perf_counter() - start, 1), "shapes": shapes,
            "peak_rss_mb_after_imports": round(before), "peak_rss_mb": round(peak_mb()), **extra}


def main(clips: int = 100) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "casme2"
        start = time.perf_counter()
        n_frames = write_fixture(root, clips)
        print(f"fixture: {clips} clips, {n_frames} frames of {WIDTH}x{HEIGHT} RGB JPEG "
              f"({sum(p.stat().st_size for p in root.rglob('*.jpg')) / 1e6:.0f} MB) in {time.perf_counter() - start:.0f} s")
        print(f"all frames decoded at full size would hold {n_frames * HEIGHT * WIDTH * 3 / 2**20:,.0f} MB "
              f"(the whole of CASME II: ~17,000 frames, ~15 GB)")
        results = {}
        for mode in ("micro", "all_frames_resized"):
            out = subprocess.run([sys.executable, __file__, "--read", str(root), mode], capture_output=True,
                                 text=True, check=True)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[mode]
            print(f"{mode}: peak RSS {r['peak_rss_mb']} MB (after imports {r['peak_rss_mb_after_imports']} MB), "
                  f"{r['seconds']} s, arrays {r['shapes']}"
                  + (f", faces found on {r['faces_found_share']:.0%} of clips" if mode == "micro" else ""))
        ok = results["micro"]["peak_rss_mb"] < BUDGET_MB
        print(f"micro read peak {results['micro']['peak_rss_mb']} MB: {'within' if ok else 'OVER'} the "
              f"{BUDGET_MB} MB budget")
        return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--read":
        print(json.dumps(read(sys.argv[2], sys.argv[3])))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
