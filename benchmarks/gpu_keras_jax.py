"""Paper CNN training images/s on Keras 3 over JAX: float32 vs mixed_bfloat16 at batch 256 and 1024, with MFU.

The H200 this project is sometimes lent has JAX but no TensorFlow, so this is
the GPU figure ferops can take there (issue 24, point 5; benchmarks/gpu_check.sh
runs it). It builds the same paper CNN as every experiment (`ferops.models`,
width from params.yaml's model section overridden to 1.0) and trains it with
Keras' own `model.fit` on in-memory NumPy arrays (uint8 48x48x1, 8 classes),
with the flip + affine augmentation as Keras layers inside the model, so it runs
on the device with the training step. No ferops training code is involved:
ferops.train.fit imports TensorFlow.

- images/s: images / median wall time of the epochs after the first (the first
  one compiles the XLA step and is excluded);
- FLOPs are counted from the model's layers: Conv2D 2*H_out*W_out*k*k*C_in*C_out
  and Dense 2*in*out per image forward, training ~= 3x forward (forward, input
  gradient, weight gradient); augmentation, pooling and the optimizer are not counted;
- MFU = achieved FLOP/s / 989e12 (H100/H200 dense bf16 spec) for both precisions.

Targets on an H100/H200 at full width: >= 20,000 images/s in bf16 and >= 1.5x float32.

    python benchmarks/gpu_keras_jax.py [--images 65536] [--epochs 4]
    python benchmarks/gpu_keras_jax.py --cpu     # tiny smoke run of the same code (< 60 s on 2 cores)

Under JAX it must never import TensorFlow (the GPU image has none); it checks so at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Before `import keras`: the backend is fixed at Keras' first import.
os.environ["KERAS_BACKEND"] = "jax"
if "--cpu" in sys.argv[1:]:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # no accelerator probing for the smoke run

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a plain script, also where ferops is not installed (the GPU image)
    sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ferops.config import load_params  # noqa: E402
from ferops.models import Head, build_model, float32_outputs  # noqa: E402
from ferops.train import precision as machine_precision  # noqa: E402

PEAK_FLOPS = 989e12  # H100/H200 SXM dense bf16 tensor-core spec
PRECISIONS = ("float32", "mixed_bfloat16")
N_CLASSES = 8
SHAPE = (48, 48, 1)
TARGET_BF16_IMAGES_S = 20_000
TARGET_RATIO = 1.5


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds per epoch; reading the loss at the end waits for the device to finish the epoch's steps."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float((logs or {}).get("loss", 0.0))
        self.seconds.append(time.perf_counter() - self._start)


def augmentation() -> keras.Sequential:
    """The paper's flips and small affine warps (params.yaml train.augment), active only in training.

    float32 under every policy: interpolated 0..255 pixels lose precision in bf16, and the warps are cheap.
    """
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=1, dtype="float32"),
        keras.layers.RandomRotation(10.0 / 360.0, fill_mode="nearest", seed=2, dtype="float32"),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=3, dtype="float32"),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=4, dtype="float32"),
    ], name="augment")


def build(width: float, policy: str, steps_per_execution: int = 1) -> tuple[keras.Model, keras.Model]:
    """(training model: augmentation + paper CNN, the paper CNN alone) computing in `policy`, outputs float32."""
    params = load_params(ROOT / "params.yaml", {"model": {"width": width}})
    keras.config.set_dtype_policy(policy)
    try:
        cnn = float32_outputs(build_model(params.model, Head(N_CLASSES, "softmax"), SHAPE))
        inputs = keras.Input(shape=SHAPE, name="pixels")
        model = keras.Model(inputs, cnn(augmentation()(inputs)), name="augmented_paper_cnn")
    finally:
        keras.config.set_dtype_policy("float32")
    # The optimizer every ferops experiment uses: Adam, lr / (1 + decay * step).
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        params.train.learning_rate, decay_steps=1, decay_rate=params.train.decay)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    return model, cnn


def forward_flops(cnn: keras.Model) -> int:
    """Multiply-adds x 2 per image in the forward pass, from the Conv2D and Dense layers."""
    total = 0
    for layer in cnn.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h_out, w_out, c_out = layer.output.shape
            k_h, k_w, c_in, _ = layer.kernel.shape
            total += 2 * h_out * w_out * k_h * k_w * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            n_in, n_out = layer.kernel.shape
            total += 2 * n_in * n_out
    return int(total)


def measure(width: float, policy: str, batch: int, x: np.ndarray, y: np.ndarray, epochs: int,
            steps_per_execution: int) -> tuple[float, int]:
    """(images/s over the timed epochs, forward FLOPs per image) for one (precision, batch)."""
    model, cnn = build(width, policy, steps_per_execution)
    conv1 = cnn.get_layer("conv1")
    assert conv1.compute_dtype == ("bfloat16" if policy == "mixed_bfloat16" else "float32"), conv1.compute_dtype
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "float32"
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=1 + epochs, shuffle=True, verbose=0, callbacks=[timer])
    return len(x) / float(np.median(timer.seconds[1:])), forward_flops(cnn)


def device_line() -> str:
    import jax

    devices = jax.devices()
    kinds = sorted({getattr(d, "device_kind", d.platform) for d in devices})
    return f"{len(devices)} x {', '.join(kinds)} ({devices[0].platform})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true",
                        help="smoke run on the CPU: 32 images, width 0.125, batch 16, 1 timed epoch")
    parser.add_argument("--images", type=int, default=None, help="training images per epoch (default 65536)")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs after the compile epoch (default 4)")
    parser.add_argument("--width", type=float, default=None, help="model width multiplier (default 1.0, the paper)")
    parser.add_argument("--steps-per-execution", type=int, default=1,
                        help="training steps per compiled call (Keras compile(steps_per_execution=...))")
    args = parser.parse_args(argv)
    width = args.width if args.width is not None else (0.125 if args.cpu else 1.0)
    epochs = args.epochs if args.epochs is not None else (1 if args.cpu else 4)
    batches = (16,) if args.cpu else (256, 1024)  # the smoke run: one step shape per precision to compile
    n = args.images if args.images is not None else (32 if args.cpu else 65536)
    n = max(max(batches), n - n % max(batches))  # whole batches only: one step shape, compiled once
    if epochs < 1:
        parser.error("--epochs must be >= 1 (timed epochs, after the compile epoch)")

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, *SHAPE), dtype=np.uint8)
    y = rng.integers(0, N_CLASSES, size=(n,), dtype=np.int32)

    import jax

    policy, why = machine_precision.choose(machine_precision.cpu_flags(), machine_precision.gpu_capabilities())
    print(f"backend: keras {keras.__version__} on jax {jax.__version__}, devices: {device_line()}")
    print(f"ferops auto precision here: {policy} ({why})")
    print(f"data: {n} uint8 images {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, {N_CLASSES} classes, in memory; "
          f"augmentation in the model on device (RandomFlip, RandomRotation, RandomTranslation, RandomZoom)")
    print(f"timing: median of {epochs} epoch(s) after 1 compile epoch; model.fit, steps_per_execution "
          f"{args.steps_per_execution}")

    results: dict[tuple[str, int], float] = {}
    flops = 0
    for batch in batches:
        for policy_name in PRECISIONS:  # interleaved per batch: drifting clocks hit both precisions alike
            results[policy_name, batch], flops = measure(width, policy_name, batch, x, y, epochs,
                                                         args.steps_per_execution)
    print(f"model: paper CNN width {width}, {flops / 1e6:.1f} MFLOP/image forward (Conv2D 2*Ho*Wo*k*k*Cin*Cout "
          f"+ Dense 2*in*out), training counted as 3x forward = {3 * flops / 1e6:.1f} MFLOP/image")
    for (policy_name, batch), rate in results.items():
        achieved = rate * 3 * flops
        print(f"{policy_name:>14} batch {batch:>5}: {rate:>10.1f} images/s  {achieved / 1e12:8.3f} TFLOP/s  "
              f"MFU {100 * achieved / PEAK_FLOPS:6.2f}% of 989 TFLOP/s")
    for batch in batches:
        ratio = results["mixed_bfloat16", batch] / results["float32", batch]
        print(f"ratio batch {batch:>5}: mixed_bfloat16 / float32 images/s = {ratio:.2f}x "
              f"(float32 / bf16 = {1 / ratio:.2f})")
    if not args.cpu:
        best = max(results["mixed_bfloat16", b] for b in batches)
        ratio = max(results["mixed_bfloat16", b] / results["float32", b] for b in batches)
        print(f"targets (H100/H200, width 1.0): bf16 >= {TARGET_BF16_IMAGES_S} images/s: "
              f"{'met' if best >= TARGET_BF16_IMAGES_S else 'NOT met'} ({best:.0f}); bf16 >= {TARGET_RATIO}x float32: "
              f"{'met' if ratio >= TARGET_RATIO else 'NOT met'} ({ratio:.2f}x)")

    assert keras.backend.backend() == "jax"
    assert "tensorflow" not in sys.modules, "the JAX path imported TensorFlow"
    print("tensorflow imported: no")
    return 0


if __name__ == "__main__":
    sys.exit(main())
