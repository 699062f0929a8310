"""The headline figure of every stage, one line each: what `make run` ends with.

`dvc metrics show` has every number, but across eight stages it is a table
hundreds of characters wide. A researcher at the end of a run wants the
figures the paper reports, each beside its baseline, and where to look next.
"""

from __future__ import annotations

import json
from pathlib import Path

from ferops.stages import STAGES


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _cv(m: dict) -> str:
    return (f"emotion CV ({m['folds']} folds, {m['n_images']} images): accuracy {m['cv_accuracy_mean']:.3f} "
            f"± {m['cv_accuracy_std']:.3f}, macro F1 {m['cv_f1_macro']:.3f}")


def _au(m: dict) -> str:
    parts = [f"{mode.replace('_', ' ')} mean F1 {m[mode]['f1_mean']:.3f} (always-present "
             f"{m[mode].get('always_present_f1_mean', float('nan')):.3f}), AUROC mean {m[mode]['auroc_mean']:.3f} "
             f"min {m[mode].get('auroc_min', float('nan')):.3f}, accuracy {m[mode]['accuracy_mean']:.3f} vs "
             f"always-absent {m[mode]['always_absent_accuracy_mean']:.3f}"
             for mode in ("all_at_once", "one_vs_all") if mode in m]
    same = m.get("all_at_once_on_one_vs_all_aus")  # the joint head on one_vs_all's AUs (au stage's SAME_AUS)
    if "one_vs_all" in m and same:  # the paper's comparison, like for like
        parts.append(f"on one vs all's {m['one_vs_all']['n_aus']} AUs: one vs all F1 {m['one_vs_all']['f1_mean']:.3f} "
                     f"AUROC {m['one_vs_all']['auroc_mean']:.3f}, all at once F1 {same['f1_mean']:.3f} "
                     f"AUROC {same['auroc_mean']:.3f}")
    i = m["intensity"]
    return "AU detection: " + "; ".join(parts) + f"; intensity MSE {i['mse_mean']:.3f}, ICC(3,1) {i['icc_mean']:.3f}"


def _transfer(m: dict) -> str:
    modes = ", ".join(f"{mode.replace('_', ' ')} {m[mode]['off_diagonal_mean']:.3f}"
                      for mode in ("zero_shot", "frozen", "fine_tuned"))
    curve = m.get("curve") or {}
    shares = sorted({key.split("@")[1] for key in curve}, key=float)
    points = "; ".join(f"{float(share):.0%}: scratch {curve[f'scratch@{share}']:.3f}, fine tuned from another domain "
                       f"{curve[f'fine_tuned@{share}']:.3f}" for share in shares)
    diagonal = ", ".join(f"{name} {value:.3f}" for name, value in m["within"].items())
    return (f"transfer: within-dataset accuracy {m['within_mean']:.3f} ({diagonal}); off-diagonal means {modes}"
            + (f"; learning curve (share of the target's training subjects) {points}" if points else ""))


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


def _tune(m: dict) -> str:
    if not m.get("enabled"):
        return "tuning: off (tune.enabled: false); cv used params.yaml as is"
    return (f"tuning (one study per outer fold): {m['trials_complete']} complete, {m['trials_pruned']} pruned, "
            f"{m['trials_failed']} failed; best inner val accuracy {m['inner_val_accuracy_mean']:.3f} "
            f"(selection score; the nested CV above is the estimate)")


# (the stage's metrics file, its headline line), in pipeline order.
SUMMARIES = tuple((STAGES[command].metrics, line) for command, line in (
    ("tune", _tune), ("cv", _cv), ("au", _au), ("transfer", _transfer), ("cross-task", _cross_task),
    ("analyze", _analysis), ("micro", _micro)))


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


def registration_lines(root: str | Path = ".") -> list[str]:
    """What each stage registered (its registry.json), one line each: the model, version, champion or not, why."""
    from ferops.tracking.registration import read_registration

    lines = []
    for stage in STAGES.values():
        r = read_registration(Path(root) / stage.registration) if stage.registration else None
        if r is None:
            continue
        if not r.registered:
            lines.append(f"{stage.command}: nothing registered ({r.reason})")
            continue
        state = "champion" if r.champion else "candidate"
        evidence = f"{r.metric} {r.score:.4g}" if r.score is not None else "no score recorded"
        lines.append(f"{stage.command}: models:/{r.model}/{r.version} {state}, {evidence} ({r.reason})")
    return lines


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def paper_rows(root: str | Path = ".") -> list[tuple[str, str, str]]:
    """(result, the paper's figure, ferops's figure from this workspace's metrics) for every paper table entry."""
    root = Path(root)
    cv, run = _read(root / STAGES["cv"].metrics), _read(root / STAGES["cv"].record) or {}
    au, an = _read(root / STAGES["au"].metrics), _read(root / STAGES["analyze"].metrics)
    tr, mi = _read(root / STAGES["transfer"].metrics), _read(root / STAGES["micro"].metrics)
    missing = "not run"
    dataset = (cv or {}).get("dataset", run.get("dataset", "?"))
    emotion = missing if cv is None else (
        f"{_pct(cv['cv_accuracy_mean'])} ± {100 * cv['cv_accuracy_std']:.2f} on {dataset} "
        f"({cv['folds']}-fold, {cv['protocol']} protocol)")
    rows = [("CK+ emotion, 10-fold CV", "98.62% ± 0.11", emotion if "ck" in dataset.lower() or "posed" in dataset
             else "needs your CK+ copy (`ferops import-data`)"),
            ("FER2013 emotion, 10-fold CV", "72.1% ± 0.5", emotion if "fer2013" in dataset.lower() or "wild" in dataset
             else "needs your FER2013 copy (`ferops import-data`)")]
    rows.append(("last-conv filters alive", "~60 of 256",
                 missing if an is None else f"{an['alive']} of {an['total']}"))
    rows.append(("filters matched to an AU (P = 1)", "43 of 50",
                 missing if an is None else f"{an['matched']} of {an['alive']} alive (random init "
                 f"{an['matched_by_chance']})"))
    rows.append(("AU detection, binary accuracy", "97.54%", missing if au is None or "all_at_once" not in au else
                 f"{_pct(au['all_at_once']['accuracy_mean'])} (always-absent "
                 f"{_pct(au['all_at_once']['always_absent_accuracy_mean'])}), mean F1 {au['all_at_once']['f1_mean']:.3f}"))
    rows.append(("AU intensity (0-5), MSE", "0.2045", missing if au is None else f"{au['intensity']['mse_mean']:.4f}"))
    rows.append(("transfer, train A / test B", "matrix (Table 3)", missing if tr is None else
                 f"within {_pct(tr['within_mean'])}; off-diagonal zero-shot {_pct(tr['zero_shot']['off_diagonal_mean'])}, "
                 f"fine-tuned {_pct(tr['fine_tuned']['off_diagonal_mean'])}"))
    rows.append(("micro-expressions, CNN+LSTM (LOSO)", "59.47%", missing if mi is None else
                 f"{_pct(mi['cnn_lstm']['5class']['accuracy'])} (UF1 {mi['cnn_lstm']['5class']['uf1']:.3f})"))
    rows.append(("micro-expressions, LBP-TOP (LOSO)", "44.12%", missing if mi is None else
                 f"{_pct(mi['lbp_top']['5class']['accuracy'])} (UF1 {mi['lbp_top']['5class']['uf1']:.3f})"))
    return rows


def paper_table(root: str | Path = ".", champions: dict[str, str] | None = None) -> str:
    """The paper's figures beside ferops's, as Markdown (the `paper` flow's artifact), plus champion links."""
    lines = ["| result | Breuer & Kimmel 2017 | ferops (this workspace) |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in paper_rows(root)]
    if champions:
        lines += ["", "| registered model | champion |", "|---|---|"]
        lines += [f"| {name} | {link} |" for name, link in champions.items()]
    lines += ["", "SynthFACS figures measure the pipeline on synthetic faces, not the paper's claim on real data; "
              "for the claim, import CK+ / FER2013 / CASME II and rerun."]
    return "\n".join(lines)
