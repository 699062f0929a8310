"""Filter-analysis speed on this CPU, against the issue's targets.

Times, for the paper CNN at full width (model.width 1.0, 64/128/256 filters):
- F_{l,j}(i) for every conv layer over 2,400 images plus the top-N ranking of
  the last layer (target <= 60 s: the pipeline's posed dataset size);
- guided backprop, one (image, filter) pair per image, in images/s (target >= 50).
Weights are random: speed does not depend on training. Images are the processed
posed dataset when present, else random pixels of the same shape.

    .venv/bin/python benchmarks/analysis_speed.py [--n 2400] [--width 1.0] [--grad-images 512] [--batch 128]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from ferops.analysis.activations import alive_filters, filter_maxima, top_n  # noqa: E402
from ferops.analysis.attribution import backprop_model, filter_gradients  # noqa: E402
from ferops.config import ModelParams  # noqa: E402
from ferops.models import CONV_LAYERS, LAST_CONV, build_model  # noqa: E402
from ferops.models.heads import Head  # noqa: E402

POSED = Path("data/processed/synthfacs_posed/images.npy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2400, help="images for the activation pass")
    ap.add_argument("--width", type=float, default=1.0, help="model.width (1.0 = the paper's filter counts)")
    ap.add_argument("--grad-images", type=int, default=512, help="images for the guided-backprop timing")
    ap.add_argument("--batch", type=int, default=128, help="images per forward / backward pass")
    ap.add_argument("--top-n", type=int, default=10, help="top images per filter")
    args = ap.parse_args()

    images = np.load(POSED, mmap_mode="r") if POSED.exists() else None
    if images is None or len(images) < args.n:
        images = np.random.default_rng(0).integers(0, 256, (args.n, 48, 48, 1), dtype=np.uint8)
    images = np.ascontiguousarray(images[:args.n])
    mp = ModelParams(filters=(64, 128, 256), kernel_size=5, pool_size=2, dense_units=512, conv_dropout=0.25,
                     dense_dropout=0.5, width=args.width)
    model = build_model(mp, Head(8, "softmax"), images.shape[1:])

    filter_maxima(model, images[:args.batch], CONV_LAYERS, args.batch)  # trace once, outside the clock
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    maxima = filter_maxima(model, images, CONV_LAYERS, args.batch)
    alive = alive_filters(maxima[LAST_CONV], 1e-6)
    top_n(maxima[LAST_CONV][:, alive], args.top_n)
    act_s, act_cpu = time.perf_counter() - start, time.process_time() - cpu

    guided = backprop_model(model, LAST_CONV, "guided")
    filters = np.random.default_rng(0).integers(0, maxima[LAST_CONV].shape[1], args.grad_images)
    grad_images = images[np.arange(args.grad_images) % len(images)]
    filter_gradients(guided, grad_images[:args.batch], filters[:args.batch], args.batch)  # trace
    start, cpu = time.perf_counter(), time.process_time()
    filter_gradients(guided, grad_images, filters, args.batch)
    rate, grad_cpu = args.grad_images / (time.perf_counter() - start), time.process_time() - cpu

    cores = os.cpu_count() or 1
    print(f"width {args.width}: conv filters {[m.shape[1] for m in maxima.values()]}, {cores} CPUs, "
          f"load average {load:.1f} at start (other jobs slow the wall-clock figures; CPU-time ones less so)")
    print(f"activations (all conv layers) + top-{args.top_n} over {args.n} images: {act_s:.1f} s "
          f"(target <= 60 s: {'met' if act_s <= 60 else 'MISSED'}); {act_cpu:.1f} CPU s = "
          f"{act_cpu / cores:.1f} s on {cores} idle cores")
    print(f"guided backprop ({LAST_CONV}, one filter per image): {rate:.0f} images/s "
          f"(target >= 50: {'met' if rate >= 50 else 'MISSED'}); "
          f"{args.grad_images / (grad_cpu / cores):.0f} images/s on {cores} idle cores (from CPU time)")


if __name__ == "__main__":
    main()
