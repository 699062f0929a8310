"""FLOPs of a Keras model counted from its layers, and this CPU's peak FLOP/s per precision.

Forward FLOPs per image: Conv2D 2*H_out*W_out*k_h*k_w*C_in*C_out, Dense 2*in*out (multiply-adds
count two); pooling, activations and dropout are left out (under 1% of the paper CNN). Training
costs about 3x forward (forward, gradient with respect to the inputs, and to the weights).

Peak = cores x clock x FLOPs per cycle per core, where FLOPs per cycle = FMA units (2 on the x86
server cores ferops runs on: Zen 2-4, Skylake-SP and later) x float32 lanes per FMA (8 for
AVX2, 16 for AVX-512) x 2. AMD Zen 4 executes AVX-512 on 256-bit units, so it gets AVX2's lanes.
`avx512_bf16` (VDPBF16PS) does twice the float32 lanes per instruction, so bf16's peak is 2x;
without it (or amx_bf16) bf16 is emulated and has no peak of its own. AMX's tile peak is not modelled.
The clock is /proc/cpuinfo's "cpu MHz" (the nominal clock a VM reports; turbo may exceed it).
"""

from __future__ import annotations

import os
from pathlib import Path

from ferops.train.precision import cpu_flags


def forward_flops(model) -> int:
    """Forward-pass FLOPs for one input of `model` (Conv2D and Dense layers, nested models included)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k_h, k_w = layer.kernel_size
            total += 2 * h * w * k_h * k_w * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def _clock_hz() -> float:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    return float("nan")


def cpu_peaks() -> tuple[dict[str, float], str]:
    """({"float32": FLOP/s, "mixed_bfloat16": FLOP/s or nan if emulated}, how they were computed)."""
    flags = cpu_flags()
    cores = len(os.sched_getaffinity(0))
    vendor = next((line.split(":")[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("vendor_id")), "")
    wide = "avx512f" in flags and vendor != "AuthenticAMD"  # Zen 4 double-pumps 256-bit units
    lanes = 16 if wide else 8 if "fma" in flags else 4
    clock = _clock_hz()
    fp32 = cores * clock * 2 * lanes * 2
    native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    peaks = {"float32": fp32, "mixed_bfloat16": 2 * fp32 if native_bf16 else float("nan")}
    how = (f"{cores} cores x {clock / 1e9:.2f} GHz x 2 FMA units x {lanes} float32 lanes x 2 = "
           f"{fp32 / 1e9:.0f} GFLOP/s float32; bf16 "
           + (f"{2 * fp32 / 1e9:.0f} GFLOP/s (avx512_bf16: 2x lanes)" if native_bf16 else
              "emulated (no avx512_bf16/amx_bf16): no peak"))
    return peaks, how
