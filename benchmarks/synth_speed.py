"""SynthFACS throughput on one core, against the 300 faces/s target.

Dataset generation sits in front of every pipeline run (and every DVC repro),
so the generator must stay cheap: this times the renderer alone (the CK+48 crop,
as the posed preset renders it) and the full `generate` path (prototype
sampling, labels, manifest) at 48x48 grey. The renderer draws, shades (3-D head,
cast shadows, skin texture) and crops every face, about 2-3 ms on one core. Rates are
given per CPU second of this single-threaded process (what one core sustains,
robust to other jobs sharing the machine) and per wall-clock second.

    .venv/bin/python benchmarks/synth_speed.py [--n 2000] [--size 48] [--channels 1] [--masks]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ferops.data.synthfacs import Identity, Nuisance, generate, render_face, sample_aus  # noqa: E402

TARGET = 300.0


class Clock:
    """CPU and wall seconds around a block."""

    def __enter__(self) -> "Clock":
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def time_renderer(n: int, size: int, channels: int, masks: bool) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    emotions = ["neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt"]
    jobs = [(Identity.sample(rng), sample_aus(emotions[i % 8], rng)[0], Nuisance.sample(rng, "studio")) for i in range(n)]
    with Clock() as clock:
        for identity, aus, nuisance in jobs:
            render_face(identity, aus, nuisance, size, channels, masks, framing="ck+")
    return n / clock.cpu, n / clock.wall


def time_generate(preset: str, n_images: int, size: int, channels: int, masks: bool) -> tuple[float, float]:
    samples = max(1, n_images // {"posed": 9, "micro": 33}.get(preset, 1))
    with Clock() as clock:
        ds = generate(preset, samples, seed=0, size=size, channels=channels, masks=masks, progress=False)
    return len(ds) / clock.cpu, len(ds) / clock.wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="faces per measurement")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--masks", action="store_true", help="also rasterise AU region masks")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    render_face(Identity(), {}, Nuisance(), framing="ck+")  # warm caches outside the timing
    results = {"render_face": time_renderer(args.n, args.size, args.channels, args.masks)}
    for preset in ("posed", "wild", "micro"):
        results[f"generate({preset})"] = time_generate(preset, args.n, args.size, args.channels, args.masks)
    print(f"SynthFACS speed, {args.size}x{args.size}x{args.channels}, masks={args.masks}, one core")
    for name, (cpu_rate, wall_rate) in results.items():
        print(f"  {name:18s} {cpu_rate:6.0f} faces/s per CPU second ({cpu_rate / TARGET:4.2f}x the {TARGET:.0f}/s target)"
              f"   {wall_rate:6.0f} faces/s wall")


if __name__ == "__main__":
    main()
