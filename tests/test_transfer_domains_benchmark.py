"""benchmarks/transfer_domains.py runs the diagonal's recipe on one rendered domain and prints its accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_domain_within_cv_prints_its_accuracy_and_time():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "transfer_domains.py"), "webcam", "80",
                          "--epochs", "1", "--width", "0.0625"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["images"] == 80 and result["classes"] == 7 and result["folds"] == 2  # webcam: no contempt
    assert 0.0 <= result["accuracy"] <= 1.0 and result["fit_s"] > 0
