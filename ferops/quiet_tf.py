"""Import TensorFlow without the GPU build's start-up chatter on machines that have no GPU.

ferops depends on `tensorflow` (the GPU build, so a GPU box uses its GPU). On a
machine without an NVIDIA driver its C++ side prints, before any logging setting
can apply ("All log messages before absl::InitializeLog() is called are written
to STDERR"), that it found no CUDA driver and that cuInit failed. Those lines
would bury the one-line errors ferops promises. This module imports TensorFlow
and initialises its devices with file descriptor 2 pointed at a temporary file,
then replays every line except those known start-up notices, so real errors
still reach stderr.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port\.cc:\d+\] oneDNN custom operations are on"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"
    r"|cuda_executor\.cc:\d+\].*(NUMA|cuInit)"
    r"|gpu_device\.cc:\d+\] Cannot dlopen some GPU libraries))")

_done = False


def import_tensorflow():
    """`import tensorflow` (once per process) with the no-GPU start-up notices dropped; returns the module."""
    global _done
    if _done or "tensorflow" in sys.modules and not hasattr(sys.modules["tensorflow"], "__file__"):
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device start-up: where cuInit reports
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines()
                    if line.strip() and not _NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
    _done = True
    return tf
