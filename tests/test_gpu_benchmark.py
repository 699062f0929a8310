"""The GPU check (benchmarks/gpu_keras_jax.py, benchmarks/gpu_check.sh) kept from rotting until a GPU is lent.

The smoke run is the real script on Keras over JAX (CPU): JAX installs beside
TensorFlow in the dev extra without moving tensorflow/keras/numpy/ml-dtypes, so
this is the same code path the H200 runs, only at tiny sizes. It takes under a
minute on an idle 2-core machine (almost all of it XLA compiling four steps).
"""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("jax")


def _smoke_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "JAX_PLATFORMS")}
    return {**env, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_cpu_smoke_run_prints_every_figure_without_tensorflow():
    done = subprocess.run([sys.executable, "benchmarks/gpu_keras_jax.py", "--cpu"], cwd=ROOT, env=_smoke_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = done.stdout
    assert re.search(r"^backend: keras [\d.]+ on jax [\d.]+", out, re.M), out
    assert "training counted as 3x forward" in out
    rows = re.findall(r"^\s*(float32|mixed_bfloat16) batch\s+(\d+):\s+([\d.]+) images/s\s+([\d.]+) TFLOP/s\s+"
                      r"MFU\s+([\d.]+)% of 989 TFLOP/s$", out, re.M)
    assert {(p, int(b)) for p, b, *_ in rows} == {(p, b) for p in ("float32", "mixed_bfloat16") for b in (16,)}
    assert all(float(rate) > 0 for _, _, rate, _, _ in rows)
    ratios = re.findall(r"^ratio batch\s+(\d+): mixed_bfloat16 / float32 images/s = ([\d.]+)x", out, re.M)
    assert [int(b) for b, _ in ratios] == [16] and all(float(r) > 0 for _, r in ratios)
    assert "targets" not in out  # the H200 targets are judged only on full-size runs
    assert out.rstrip().endswith("tensorflow imported: no")


@pytest.mark.slow
def test_the_model_code_imports_without_tensorflow():
    # ferops.models and ferops.config are what the GPU image imports: it has no TensorFlow.
    code = ("import sys; import ferops.config, ferops.models, ferops.train.precision; "
            "assert 'tensorflow' not in sys.modules, sorted(m for m in sys.modules if m.startswith('tensorflow'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_smoke_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_gpu_check_script_parses_and_plans_the_run():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True).returncode == 0
    helped = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--fetch" in helped.stdout
    planned = subprocess.run(["bash", str(script), "--dry-run", "--", "--images", "1024"], capture_output=True,
                             text=True, timeout=60)
    assert planned.returncode == 0, planned.stderr
    assert "--no-index --find-links" in planned.stdout and "keras==" in planned.stdout and "pyyaml" in planned.stdout
    assert "gpu_keras_jax.py --images 1024" in planned.stdout
    wrong = subprocess.run(["bash", str(script), "--no-such-flag"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown argument" in wrong.stderr
