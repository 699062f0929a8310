#!/usr/bin/env bash
# The GPU figure of issue 24 (point 5) in one command, for the lent H200 (docs/gpu.md).
#
#   bash benchmarks/gpu_check.sh [--wheels DIR] [-- ARGS...]   on the GPU machine: install the carried wheels
#                                                            into a throwaway venv over the image's packages,
#                                                            then run benchmarks/gpu_keras_jax.py (ARGS go to it)
#   bash benchmarks/gpu_check.sh --fetch [--wheels DIR]      here (CPU machine, network): download those wheels
#   bash benchmarks/gpu_check.sh --dry-run                   print what would run, change nothing
#   bash benchmarks/gpu_check.sh --help
#
# The GPU image has Python 3.12, JAX with CUDA, numpy, ml-dtypes, h5py and rich, no TensorFlow, and no registry.
# Keras 3 is pure Python; it and the small packages the image may lack are carried (< 64 MiB; about 4 MiB):
# keras (same version as this venv's), namex, optree (cp312 binary), absl-py, packaging, typing-extensions,
# and pyyaml (ferops.config reads params.yaml). Whole run: well under the 8 minutes budgeted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="$ROOT/benchmarks/gpu_wheels"
PYTHON="${PYTHON:-python3}"
KERAS_VERSION="${KERAS_VERSION:-3.15.1}"  # the Keras the CPU figures were taken with
PACKAGES=("keras==$KERAS_VERSION" namex optree absl-py packaging typing-extensions pyyaml)
MODE=run
BENCH_ARGS=()

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --fetch) MODE=fetch ;;
    --dry-run) MODE=dry ;;
    --wheels) WHEELS="$(cd "$2" 2>/dev/null && pwd || echo "$2")"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; BENCH_ARGS=("$@"); break ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

total_size() { du -cb "$WHEELS"/*.whl 2>/dev/null | tail -1 | cut -f1; }

if [[ $MODE == fetch ]]; then
  # cp312 manylinux x86_64: several manylinux tags, since optree's wheel is manylinux_2_27/2_28.
  PIP="${PIP:-$ROOT/.venv/bin/pip}"
  [[ -x $PIP ]] || PIP="$PYTHON -m pip"
  mkdir -p "$WHEELS"
  $PIP download --quiet --only-binary=:all: --implementation cp --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --no-deps -d "$WHEELS" "${PACKAGES[@]}"
  ls -l "$WHEELS"
  bytes=$(total_size)
  echo "carried wheels: $(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }') in $WHEELS (limit 64 MiB)"
  (( bytes < 64 * 1024 * 1024 )) || { echo "gpu_check.sh: over the 64 MiB carry limit" >&2; exit 1; }
  exit 0
fi

VENV="${TMPDIR:-/tmp}/ferops-gpu-venv"
if [[ $MODE == dry ]]; then
  echo "would: $PYTHON -m venv --without-pip --system-site-packages $VENV"
  echo "would: $VENV/bin/python -m pip install --no-index --find-links $WHEELS ${PACKAGES[*]}"
  echo "would: KERAS_BACKEND=jax $VENV/bin/python $ROOT/benchmarks/gpu_keras_jax.py ${BENCH_ARGS[*]-}"
  exit 0
fi

start=$SECONDS
ls "$WHEELS"/keras-*.whl >/dev/null 2>&1 || {
  echo "gpu_check.sh: no keras wheel in $WHEELS: run 'make gpu-wheels' on the CPU machine and carry" \
       "benchmarks/gpu_wheels (docs/gpu.md)" >&2
  exit 2
}
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
"$PYTHON" --version

echo "== carried wheels ($(awk -v b="$(total_size)" 'BEGIN { printf "%.1f MiB", b / 1048576 }'))"
# A venv that sees the image's packages (JAX, numpy, ...) and takes the carried ones on top. --without-pip: the
# image's own pip runs inside it (no ensurepip needed) and installs into the venv, not the system.
rm -rf "$VENV"
"$PYTHON" -m venv --without-pip --system-site-packages "$VENV"
EXTRA_PATH=""
if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --find-links "$WHEELS" \
    "${PACKAGES[@]}"
  "$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
    | grep -iE "^(jax|jaxlib|keras|namex|optree|numpy|ml.dtypes|pyyaml) " || true
else
  # No pip in the image: a wheel is a zip of importable files, so unpacking each onto the path installs it.
  echo "(no pip for $PYTHON: unpacking the wheels onto PYTHONPATH instead)"
  EXTRA_PATH="$VENV/unpacked"
  "$VENV/bin/python" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
    "$EXTRA_PATH" "$WHEELS"/*.whl
fi

echo "== benchmark (install took $((SECONDS - start)) s)"
cd "$ROOT"
KERAS_BACKEND=jax PYTHONPATH="$ROOT${EXTRA_PATH:+:$EXTRA_PATH}${PYTHONPATH:+:$PYTHONPATH}" \
  "$VENV/bin/python" benchmarks/gpu_keras_jax.py ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}
echo "== done in $((SECONDS - start)) s"
