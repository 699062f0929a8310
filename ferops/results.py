"""The headline figure of every stage, one line each: what `make run` ends with.

`dvc metrics show` has every number, but across eight stages it is a table
hundreds of characters wide. A researcher at the end of a run wants the
figures the paper reports, each beside its baseline, and where to look next.
"""

from __future__ import annotations

import json
from pathlib import Path


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _cv(m: dict) -> str:
    return (f"emotion CV ({m['folds']} folds, {m['n_images']} images): accuracy {m['cv_accuracy_mean']:.3f} "
            f"± {m['cv_accuracy_std']:.3f}, macro F1 {m['cv_f1_macro']:.3f}")


def _au(m: dict) -> str:
    parts = [f"{mode.replace('_', ' ')} mean F1 {m[mode]['f1_mean']:.3f} (always-absent 0), accuracy "
             f"{m[mode]['accuracy_mean']:.3f} vs always-absent {m[mode]['always_absent_accuracy_mean']:.3f}"
             for mode in ("all_at_once", "one_vs_all") if mode in m]
    i = m["intensity"]
    return "AU detection: " + "; ".join(parts) + f"; intensity MSE {i['mse_mean']:.3f}, ICC(3,1) {i['icc_mean']:.3f}"


def _transfer(m: dict) -> str:
    modes = ", ".join(f"{mode.replace('_', ' ')} {m[mode]['off_diagonal_mean']:.3f}"
                      for mode in ("zero_shot", "frozen", "fine_tuned"))
    return f"transfer: within-dataset accuracy {m['within_mean']:.3f}; off-diagonal means {modes}"


def _cross_task(m: dict) -> str:
    sizes = sorted({key.split("@")[1] for key in m}, key=float)
    cells = "; ".join(f"{size}: " + ", ".join(f"{mode.replace('_', ' ')} {m[f'{mode}_f1@{size}']:.3f}"
                                             for mode in ("scratch", "frozen", "fine_tuned")) for size in sizes)
    return f"cross-task AU F1 by share of training subjects: {cells}"


def _analysis(m: dict) -> str:
    return (f"filters <-> AUs: {m['alive']}/{m['total']} alive, {m['matched']} matched by the paper's rule "
            f"(random init {m['matched_by_chance']}, AUs shuffled within emotion {m['matched_by_cooccurrence']:.1f}); "
            f"probe AUROC {m['probe_auroc_matched']:.3f}; mask-energy ratio {m['mask_energy_ratio']:.2f}")


def _micro(m: dict) -> str:
    five = {k: v["5class"] for k, v in m.items()}
    return ("micro-expressions (LOSO, 5 classes): UF1 CNN+LSTM {:.3f}, LBP-TOP {:.3f}, chance {:.3f}".format(
        five["cnn_lstm"]["uf1"], five["lbp_top"]["uf1"], five["chance"]["uf1"]))


SUMMARIES = (("outputs/cv/metrics.json", _cv), ("outputs/au/metrics.json", _au),
             ("outputs/transfer/metrics.json", _transfer), ("outputs/cross_task/metrics.json", _cross_task),
             ("outputs/analysis/metrics.json", _analysis), ("outputs/micro/metrics.json", _micro))


def summary_lines(root: str | Path = ".") -> list[str]:
    """One line per stage whose metrics exist under `root` (stages not run yet are skipped)."""
    lines = []
    for rel, line in SUMMARIES:
        metrics = _read(Path(root) / rel)
        if metrics is not None:
            try:
                lines.append(line(metrics))
            except (KeyError, TypeError, ValueError):
                lines.append(f"{rel}: unreadable (written by another ferops version?); rerun its stage")
    return lines
