"""Time to the first answer: one photo through `ferops predict` against a bare `import tensorflow`, same run.

Every `ferops` command, DVC stage and test subprocess pays Python's start-up and its imports;
this prints each piece in fresh processes, best of `--repeats`, so the gap between ferops and
its floor (TensorFlow's own import) is visible:

- `python -c "import tensorflow"`, `import keras` (on TensorFlow, and on JAX), `import mlflow`: the floors;
- `ferops predict photo.png --model URI`, with `--runtime keras` and the default auto: command to answer, a
  SynthFACS still as the photo;
- the cumulative import time of the heaviest top-level packages inside that command
  (`python -X importtime`), and what the rest of the command costs.

A few photos are scored by ferops.serving.numpy_model, with no Keras in the process (`--runtime auto`);
`--runtime keras` is printed beside it: Keras over JAX where JAX is installed and no GPU is
(ferops/serving/backend.py), else TensorFlow.

The model defaults to models:/fer-pipeline@champion in the project's store (`make run` registers
it). Target: <= 6 s for the photo on a 2-core CPU.

    .venv/bin/python benchmarks/startup.py [--model URI] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEROPS = str(Path(sys.executable).with_name("ferops"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def seconds(cmd: list[str], repeats: int, cwd: Path, env: dict | None = None) -> tuple[float, list[float]]:
    """Best and all wall times of `cmd` in fresh processes (it must succeed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {result.stderr.strip().splitlines()[-1:]}")
    return min(times), times


def heaviest_imports(cmd: list[str], cwd: Path, top: int = 6) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import time (seconds) inside `cmd` (run once under -X importtime)."""
    result = subprocess.run([sys.executable, "-X", "importtime", *cmd], cwd=cwd, env=ENV, capture_output=True,
                            text=True)
    totals: dict[str, float] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line)  # top level: no indent
        if match:
            name = match.group(2).split(".")[0]
            totals[name] = totals.get(name, 0.0) + int(match.group(1)) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models:/fer-pipeline@champion")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import cv2

    sys.path.insert(0, str(ROOT))
    from ferops.serving.synthetic import still

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.png"
        cv2.imwrite(str(photo), cv2.cvtColor(still(seed=1), cv2.COLOR_RGB2BGR))
        rows = []
        for name in ("tensorflow", "keras", "mlflow"):
            rows.append((f"python -c 'import {name}'", *seconds([sys.executable, "-c", f"import {name}"],
                                                               args.repeats, ROOT)))
        rows.append(("KERAS_BACKEND=jax python -c 'import keras'",  # the backend ferops predict picks on a CPU
                     *seconds([sys.executable, "-c", "import keras"], args.repeats, ROOT,
                              {**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})))
        predict = [FEROPS, "predict", str(photo), "--model", args.model]
        rows.append((f"ferops predict photo.png --model {args.model} --runtime keras",
                     *seconds([*predict, "--runtime", "keras"], args.repeats, ROOT)))
        rows.append((f"ferops predict photo.png --model {args.model}", *seconds(predict, args.repeats, ROOT)))
        imports = heaviest_imports(["-m", "ferops.cli", *predict[1:]], ROOT)
    print(f"best of {args.repeats} fresh processes, {os.cpu_count()} CPU cores:")
    for label, best, times in rows:
        print(f"  {label:78s} {best:5.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
    floor = rows[0][1]
    print(f"ferops predict (runtime auto: numpy for one photo) / bare import tensorflow: {rows[-1][1] / floor:.2f}x; "
          f"against --runtime keras: {rows[-1][1] / rows[-2][1]:.2f}x; target <= 6 s: "
          f"{'met' if rows[-1][1] <= 6 else 'not met'}")
    print("heaviest imports inside ferops predict (cumulative, one run): "
          + ", ".join(f"{name} {s:.2f} s" for name, s in imports))


if __name__ == "__main__":
    main()
