"""Which Keras dtype policy this machine computes in (`train.precision: auto`), and models moved to it.

bfloat16 halves the cost of a convolution only where the hardware has it:
CPUs reporting `avx512_bf16` or `amx_bf16` (measured 1.9x training and 2x
inference on a 2-core EPYC with avx512_bf16) and CUDA GPUs of compute
capability 8.0 and up. Elsewhere TensorFlow emulates bf16 and runs about half
as fast as float32 (measured on an AVX2-only EPYC), so `auto` keeps float32
there; 7.x GPUs get float16 with Keras' loss scaling. A saved model carries
the policy it was trained in; `with_policy` rebuilds it in the loading
machine's policy (same weights: variables are float32 under every policy),
so a bf16-trained model never runs emulated bf16 on a CPU without it.

No TensorFlow import here: `ferops predict`'s start-up and the Keras-on-JAX GPU
benchmark use this module too.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
CPU_FLAGS_ENV = "FEROPS_CPU_FLAGS"  # space-separated flags that replace /proc/cpuinfo's (tests simulate CPUs with it)
PRECISION_ENV = "FEROPS_PRECISION"  # a policy name that replaces `auto` wherever it is resolved (forced serving)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (Linux /proc/cpuinfo), or FEROPS_CPU_FLAGS when set."""
    given = os.environ.get(CPU_FLAGS_ENV)
    if given is not None:
        return frozenset(given.split())
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def has_nvidia_driver() -> bool:
    """An NVIDIA kernel driver is loaded: without one no CUDA GPU exists, so the backend is never asked."""
    return Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the CUDA GPUs the Keras backend sees ([] on CPU-only machines, cheaply)."""
    if os.environ.get(CPU_FLAGS_ENV) is not None or not has_nvidia_driver():
        return []
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [tuple(int(v) for v in str(d.compute_capability).split(".")[:2])
                for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            found.append(tuple(capability))
    return found


def choose(flags: frozenset[str], capabilities: list[tuple[int, int]]) -> tuple[str, str]:
    """(policy, why) for a machine: its GPUs decide when it has any, otherwise its CPU flags."""
    if capabilities:
        lowest = min(capabilities)
        text = ".".join(map(str, lowest))
        if lowest >= (8, 0):
            return "mixed_bfloat16", f"CUDA GPU of compute capability {text} (bf16 tensor cores)"
        if lowest >= (7, 0):
            return "mixed_float16", f"CUDA GPU of compute capability {text} (float16 tensor cores, no bf16)"
        return "float32", f"CUDA GPU of compute capability {text} (no tensor cores)"
    native = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if native:
        return "mixed_bfloat16", f"CPU reports {' and '.join(native)}"
    return "float32", "CPU without avx512_bf16 or amx_bf16 (bf16 would be emulated, about 2x slower)"


@functools.lru_cache(maxsize=None)
def _machine_choice() -> tuple[str, str]:
    forced = os.environ.get(PRECISION_ENV)
    if forced:
        if forced not in POLICIES:
            from ferops.errors import FeropsError

            raise FeropsError(f"{PRECISION_ENV}={forced[:40]!r}: expected one of {', '.join(POLICIES)}")
        choice = forced, f"forced by {PRECISION_ENV}"
    else:
        capabilities = gpu_capabilities()
        choice = choose(cpu_flags(), capabilities)
        if choice[0] != "float32" and not capabilities and keras_backend() == "jax":
            # XLA:CPU has no native bf16 convolution: measured no gain (303 vs 309 images/s, full width)
            choice = "float32", "Keras on JAX on a CPU (XLA:CPU computes bf16 no faster than float32)"
    return choice


def keras_backend() -> str:
    """The backend Keras runs on in this process, or will once imported (KERAS_BACKEND, else TensorFlow)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def resolve(requested: str = "auto") -> str:
    """The policy to compute in: `requested` itself, or for "auto" this machine's choice."""
    return _machine_choice()[0] if requested == "auto" else requested


@functools.lru_cache(maxsize=None)
def announce(requested: str) -> str:
    """`resolve(requested)`, said once per process on stderr (training commands call it; inference stays quiet)."""
    policy = resolve(requested)
    why = _machine_choice()[1] if requested == "auto" else "train.precision"
    print(f"ferops: precision {requested} -> {policy} ({why})", file=sys.stderr)
    return policy


# ---------------------------------------------------------------------------- models in a policy

_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy")


def _policy_names(node) -> set[str]:
    if isinstance(node, dict):
        if node.get("class_name") in _POLICY_CLASSES and isinstance(node.get("config"), dict):
            return {node["config"].get("name")}
        return set().union(*(_policy_names(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_policy_names(v) for v in node)) if node else set()
    return set()


def _set_policy(node, policy: str):
    if isinstance(node, dict):
        if node.get("class_name") in _POLICY_CLASSES and isinstance(node.get("config"), dict):
            node["config"]["name"] = policy
        else:
            for value in node.values():
                _set_policy(value, policy)
    elif isinstance(node, list):
        for value in node:
            _set_policy(value, policy)


def model_policy(model) -> str:
    """The policy the model's hidden layers compute in (its first non-float32 one, else float32)."""
    mixed = sorted(name for name in _policy_names(model.get_config()) if name != "float32")
    return mixed[0] if mixed else "float32"


def _in_policy(config: dict, policy: str) -> dict:
    """A Functional model's config (get_config's form) with hidden layers in `policy`, output layers float32."""
    entries = config.get("output_layers", [])
    entries = [entries] if entries and isinstance(entries[0], str) else entries  # one output: [name, 0, 0]
    outputs = {entry[0] for entry in entries}
    for layer in config["layers"]:
        _set_policy(layer, "float32" if layer["name"] in outputs else policy)
    return config


def _outputs_float32(model, policy: str):
    if policy == "float32":
        return model
    from ferops.models.heads import float32_outputs  # a float32-trained model served in bf16: softmax stays f32

    return float32_outputs(model)


def with_policy(model, policy: str):
    """`model` rebuilt to compute in `policy` with the same weights; its output layers stay float32.

    Returns `model` itself when it already computes in `policy`.
    """
    if model_policy(model) == policy:
        return model
    rebuilt = model.__class__.from_config(_in_policy(model.get_config(), policy))
    rebuilt.set_weights(model.get_weights())
    return _outputs_float32(rebuilt, policy)


def load_keras(path: str | Path, precision: str = "auto"):
    """A .keras file loaded (safe mode, uncompiled) to compute in this machine's policy (or `precision`).

    The policy is set in the file's config.json before Keras builds the model, which
    builds it once and never calls get_config (that imports TensorFlow whenever it is
    installed, even under JAX: Keras 3.15's serialization checks for tf.TensorShape).
    """
    import json
    import tempfile
    import zipfile

    import keras

    import ferops.train.masked  # noqa: F401  (registers the AU losses a compiled AU model names)

    policy = resolve(precision)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))
        if "layers" not in saved.get("config", {}):  # not a Functional model: rebuild after loading
            return with_policy(keras.models.load_model(path, compile=False), policy)
        mixed = sorted(_policy_names(saved["config"]["layers"]) - {"float32"})
        if (mixed[0] if mixed else "float32") == policy:  # saved in this policy (model_policy's rule)
            return keras.models.load_model(path, compile=False)
        saved["config"] = _in_policy(saved["config"], policy)
        with tempfile.TemporaryDirectory(prefix="ferops-policy-") as tmp:
            moved = Path(tmp) / Path(path).name
            with zipfile.ZipFile(moved, "w") as out:
                for item in archive.infolist():
                    data = json.dumps(saved).encode() if item.filename == "config.json" else archive.read(item)
                    out.writestr(item, data)
            model = keras.models.load_model(moved, compile=False)
    return _outputs_float32(model, policy)
