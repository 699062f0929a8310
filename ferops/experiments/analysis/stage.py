"""Filter <-> Action Unit analysis (the paper's §3.1), with the tests that make its claim falsifiable.

One stage over a trained emotion model:
1. F_{l,j}(i), the spatial max of each filter on each image; dead filters per layer.
2. The paper's P(j,u) over each alive filter's top-N images, matched filters at P = 1
   and at `analysis.threshold`.
3. What chance and co-occurrence give: the same count for a random-init copy of the
   network, and with AU labels shuffled among images of the same emotion.
4. The AU probe set (AUs drawn independently of emotion): AUROC of F_j against each AU.
5. Where matched filters look: guided-backprop energy inside the AU's exact mask.
6. Filter images (deconvnet, guided backprop), the P heatmap, first-layer kernels.
Everything lands in `outputs/analysis/` and in an MLflow run linked to the model's run.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd

from ferops.analysis.activations import alive_filters, filter_maxima, top_n
from ferops.analysis.attribution import backprop_model, filter_gradients
from ferops.analysis.au_correlation import au_share, best_au, cooccurrence_matches, matched
from ferops.analysis.filter_images import filter_grid, heatmap, kernel_grid, rescaling, topk_figure
from ferops.analysis.mask_energy import mask_shares
from ferops.analysis.probe import probe_auroc
from ferops.config import Params, flatten
from ferops.data.dataset import Dataset
from ferops.errors import FeropsError
from ferops.evaluation import write_csv, write_json
from ferops.io import atomic_dir
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.run_record import round_table
from ferops.tracking.store import configure

OUT_DIR = Path("outputs/analysis")
MODEL_PATH = Path("outputs/model/model.keras")
HEATMAP = "au_heatmap.png"
PAPER_THRESHOLD = 1.0

DEFINITIONS = {
    "alive": "filters of the analysed layer whose spatial max exceeds analysis.epsilon on some image of the data",
    "matched": "alive filters with P(j,u) = 1 for some AU u over their top_n images (the paper's rule)",
    "matched_by_chance": "the same count for a random-init copy of the network (same architecture, no training)",
    "matched_by_cooccurrence": "mean count with AU labels shuffled among images of the same emotion "
                               "(analysis.permutations shuffles): what the emotion a filter picks explains alone",
    "probe_auroc_matched": "mean AUROC, on the AU probe set, of F_j against u over matched (j, u) pairs "
                           "(random_init_probe_auroc_matched: the same for the random-init network's matches)",
    "probe_selective_filters": "matched filters with a matched AU whose probe AUROC >= analysis.selective_auroc",
    "mask_energy_ratio": "guided-backprop energy share inside the AU's mask / the mask's area share "
                         "(1 = no better than looking anywhere), over probe images showing u; "
                         "random_init_mask_energy_ratio: the same images and filters in the random-init network",
}


def analyze(params: Params, model_path: str | Path = MODEL_PATH, out_dir: str | Path = OUT_DIR,
            model_run_id: str | None = None) -> dict:
    """Analyse `model_path` (a .keras file or registry URI); write `out_dir` and an MLflow run; return metrics.

    The run is nested under the model's run (from `model_run_id`, the run.json beside a .keras file,
    or the registry) and tagged `ferops.analysed_run`.
    """
    from ferops.predict import load_model

    ap = params.analysis
    configure(params.tracking)
    model, _ = load_model(str(model_path))
    run_id = model_run_id or _model_run(str(model_path))
    data = Dataset.load(params.dataset.processed_dir)
    probe = _load_probe(ap.probe_data)
    if model.input_shape[1:] != data.images.shape[1:] or model.input_shape[1:] != probe.images.shape[1:]:
        raise FeropsError(f"{model_path}: takes images {model.input_shape[1:]}, but {params.dataset.processed_dir} "
                          f"has {data.images.shape[1:]} and {ap.probe_data} {probe.images.shape[1:]}")
    codes = [c for c in data.au_codes if c in probe.au_codes]
    if not codes:
        raise FeropsError(f"{params.dataset.processed_dir}: no AU columns shared with {ap.probe_data}; "
                          f"the analysis needs AU-coded data")
    aus = [f"AU{c}" for c in codes]
    presence = data.au_presence(aus)
    known = ~np.isnan(presence).any(axis=1)  # CK+ codes AUs on peak frames only: other rows cannot be scored
    if known.sum() < ap.top_n:
        raise FeropsError(f"{params.dataset.processed_dir}: {int(known.sum())} images have every AU coded, "
                          f"fewer than analysis.top_n = {ap.top_n}")
    images, presence, emotions = data.images[known], presence[known], data.labels[known]
    layers = tuple(layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    if ap.layer not in layers:
        raise FeropsError(f"analysis.layer: {ap.layer!r} is not a conv layer of {model_path}; it has {list(layers)}")

    # 1-2. Activations, dead filters, P(j,u).
    maxima = filter_maxima(model, images, layers, ap.batch_size)
    alive_by_layer = {name: alive_filters(f, ap.epsilon) for name, f in maxima.items()}
    alive = alive_by_layer[ap.layer]
    idx, top, p, is_matched = _paper_statistic(maxima[ap.layer], presence, ap)

    # 3. Chance: random-init network; AU labels shuffled within emotion.
    rng = np.random.default_rng(params.seed)
    keras.utils.set_random_seed(params.seed)
    untrained = keras.models.clone_model(model)  # fresh initialisers, same architecture
    idx0, _, p0, matched0 = _paper_statistic(filter_maxima(untrained, images, (ap.layer,), ap.batch_size)[ap.layer],
                                             presence, ap)
    shuffled = cooccurrence_matches(top, presence, emotions, PAPER_THRESHOLD, ap.permutations, rng)

    # 4. AU probe set.
    probe_presence = probe.au_presence(aus)
    probe_f = filter_maxima(model, probe.images, (ap.layer,), ap.batch_size)[ap.layer][:, idx]
    auroc = probe_auroc(probe_f, probe_presence)
    best = best_au(p, auroc)
    pairs = _pairs(p, is_matched, best)
    pair_auroc = auroc[pairs[:, 0], pairs[:, 1]]
    auroc0 = probe_auroc(filter_maxima(untrained, probe.images, (ap.layer,), ap.batch_size)[ap.layer][:, idx0],
                         probe_presence)
    pairs0 = _pairs(p0, matched0, best_au(p0, auroc0))

    # 5. Where matched filters look (guided backprop on probe images showing the AU).
    guided = backprop_model(model, ap.layer, "guided")
    energy = _mask_energy(guided, backprop_model(untrained, ap.layer, "guided"), probe, probe_f, probe_presence,
                          codes, pairs, idx, ap)

    # 6. Filter images on the analysed data.
    deconv = backprop_model(model, ap.layer, "deconv")
    order = np.lexsort((-p.max(axis=1), ~is_matched)) if len(idx) else np.array([], int)
    titles = [f"f{idx[j]} {aus[best[j]]} P={p[j].max():.2f}" for j in range(len(idx))]

    table = pd.DataFrame(p, columns=aus).assign(filter=idx, layer=ap.layer, matched=is_matched,
                                                best_au=[aus[u] for u in best] if len(idx) else [],
                                                best_p=p.max(axis=1) if len(idx) else [],
                                                best_au_probe_auroc=auroc[np.arange(len(idx)), best])
    table = table[["layer", "filter", "best_au", "best_p", "best_au_probe_auroc", "matched", *aus]]
    probe_table = pd.DataFrame(auroc, columns=aus).assign(filter=idx)[["filter", *aus]]
    dead_table = pd.DataFrame([{"layer": name, "alive": int(a.sum()), "total": len(a)}
                               for name, a in alive_by_layer.items()])
    metrics = {
        "model": str(model_path), "analysed_run": run_id, "layer": ap.layer, "top_n": ap.top_n,
        "n_images": int(len(data)), "n_images_au_known": int(known.sum()), "n_probe_images": int(len(probe)),
        "alive": int(alive.sum()), "total": int(len(alive)),
        **{f"alive_{name}": int(a.sum()) for name, a in alive_by_layer.items()},
        **{f"total_{name}": int(len(a)) for name, a in alive_by_layer.items()},
        "matched": int(is_matched.sum()),
        "matched_threshold": float(ap.threshold), "matched_at_threshold": int(matched(p, ap.threshold).sum()),
        "matched_by_chance": int(matched0.sum()), "random_init_alive": int(len(idx0)),
        "matched_by_cooccurrence": float(shuffled.mean()) if len(shuffled) else 0.0,
        "matched_by_cooccurrence_p95": float(np.percentile(shuffled, 95)) if len(shuffled) else 0.0,
        "cooccurrence_p_value": float((1 + (shuffled >= is_matched.sum()).sum()) / (1 + len(shuffled))),
        "pairs": "matched (filter, AU) pairs" if is_matched.any() else "best AU of each alive filter (none matched)",
        "n_pairs": int(len(pairs)),
        "probe_auroc_matched": _mean(pair_auroc),
        "probe_selective_pairs": int((pair_auroc >= ap.selective_auroc).sum()),
        "probe_selective_filters": int(len(np.unique(pairs[pair_auroc >= ap.selective_auroc, 0]))),
        "probe_selective_auroc": float(ap.selective_auroc),
        "probe_auroc_best": _best_auroc(auroc),
        "random_init_probe_auroc_matched": _mean(auroc0[pairs0[:, 0], pairs0[:, 1]]),
        "random_init_probe_auroc_best": _best_auroc(auroc0),
        **energy["summary"],
    }

    experiment_note = f"{params.dataset.processed_dir} rows with every AU coded ({int(known.sum())} of {len(data)})"
    with mlflow.start_run(run_name=f"analyze-{ap.layer}", parent_run_id=_existing(run_id)) as run:
        mlflow.set_tags({"ferops.kind": "analyze", "ferops.analysed_run": run_id or "unknown",
                         "ferops.model": str(model_path), "analysis.data_rows": experiment_note,
                         **lineage_tags({"data": params.dataset.processed_dir, "probe": ap.probe_data})})
        mlflow.log_params({k: v for k, v in flatten(params).items() if k.startswith("analysis.")}
                          | {"seed": params.seed})
        numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        mlflow.log_metrics({k: float(v) for k, v in numbers.items()})
        with atomic_dir(out_dir, stage="analyze") as tmp:
            (tmp / "tables").mkdir()
            (tmp / "figures").mkdir()
            write_csv(table, tmp / "tables" / "au_correlation.csv")
            write_csv(probe_table, tmp / "tables" / "probe_auroc.csv")
            write_csv(dead_table, tmp / "tables" / "dead_filters.csv")
            write_csv(energy["table"], tmp / "tables" / "mask_energy.csv")
            title = (f"{Path(str(model_path)).name} {ap.layer}: P(j,u) over top-{ap.top_n}\n"
                     f"matched {int(is_matched.sum())}/{int(alive.sum())} alive (random init {matched0.sum()}, "
                     f"shuffled within emotion {metrics['matched_by_cooccurrence']:.1f})")
            heatmap(p[order] if len(idx) else np.zeros((0, len(aus))), [titles[j] for j in order], aus,
                    tmp / HEATMAP, title)
            _filter_figures(model, guided, deconv, images, maxima[ap.layer][:, idx], idx, order, titles, ap,
                            tmp / "figures")
            mlflow.log_table(round_table(table), "analysis/au_correlation.json")  # the UI shows 4 significant digits
            mlflow.log_table(round_table(probe_table), "analysis/probe_auroc.json")
            mlflow.log_artifacts(str(tmp), "analysis")
            # metrics.json: the numbers `dvc metrics` compares; run.json: what they mean and where they came from.
            write_json(numbers, tmp / "metrics.json")
            write_json({"run_id": run.info.run_id, "analysed_run": run_id, "model": str(model_path),
                        **{k: v for k, v in metrics.items() if k not in numbers}, "definitions": DEFINITIONS},
                       tmp / "run.json")
            mlflow.log_artifact(str(tmp / "metrics.json"), "analysis")
            mlflow.log_artifact(str(tmp / "run.json"), "analysis")
    return {**metrics, "run_id": run.info.run_id}


def _paper_statistic(maxima: np.ndarray, presence: np.ndarray, ap):
    """(alive filter indices, their top-N rows, P(j,u), matched at P = 1) for one network's F on the data."""
    idx = np.flatnonzero(alive_filters(maxima, ap.epsilon))
    top = top_n(maxima[:, idx], ap.top_n)
    p = au_share(top, presence)
    return idx, top, p, matched(p, PAPER_THRESHOLD)


def _pairs(p: np.ndarray, is_matched: np.ndarray, best: np.ndarray) -> np.ndarray:
    """K x 2 (alive-filter position, AU) pairs: every P = 1 pair, or each filter's best AU when none matched."""
    if is_matched.any():
        return np.argwhere(p >= PAPER_THRESHOLD - 1e-9)
    return np.stack([np.arange(len(p)), best], axis=1) if len(p) else np.zeros((0, 2), int)


def _best_auroc(auroc: np.ndarray) -> float | None:
    """Mean over filters of each filter's best probe AUROC (how AU-selective the layer is at best)."""
    return _mean([np.nanmax(row) for row in auroc if not np.isnan(row).all()])


def _mean(values) -> float | None:
    values = np.asarray(values, np.float64)
    return float(np.nanmean(values)) if values.size and not np.isnan(values).all() else None


def _model_run(model_path: str) -> str | None:
    """The MLflow run that trained the model: run.json beside a .keras file, or the registry's record."""
    if model_path.endswith(".keras"):
        record = Path(model_path).with_name("run.json")
        return json.loads(record.read_text()).get("run_id") if record.exists() else None
    return mlflow.models.get_model_info(model_path).run_id


def _existing(run_id: str | None) -> str | None:
    """`run_id` if the store has it (then the analysis nests under it), else None (tag only)."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        mlflow.get_run(run_id)
        return run_id
    except MlflowException:
        return None


def _load_probe(path: str) -> Dataset:
    try:
        probe = Dataset.load(path)
    except FileNotFoundError:
        raise FeropsError(f"{path}: AU probe set not found (analysis.probe_data); render it first with the "
                          f"domains stage (`dvc repro` does)") from None
    if "masks" not in probe.extras or "mask_aus" not in probe.extras:
        raise FeropsError(f"{path}: the AU probe set has no AU region masks; render it with masks: true")
    return probe


def _mask_energy(guided, guided0, probe: Dataset, probe_f: np.ndarray, presence: np.ndarray, codes: list[int],
                 pairs: np.ndarray, idx: np.ndarray, ap) -> dict:
    """Per (filter, AU) pair: energy share in the AU's mask on the probe images showing it that fire j most.

    The same images through the random-init network (`guided0`, same filter index) give a second chance
    level: guided backprop is known to draw face edges even without training (Adebayo et al. 2018), so a
    ratio above 1 alone does not show learning.
    """
    mask_index = [list(probe.extras["mask_aus"]).index(c) for c in codes]
    rows, filters, pair_of = [], [], []
    for k, (j, u) in enumerate(pairs):
        showing = np.flatnonzero(presence[:, u] > 0)
        pick = showing[np.argsort(-probe_f[showing, j], kind="stable")[:ap.energy_images]]
        rows += pick.tolist()
        filters += [idx[j]] * len(pick)
        pair_of += [k] * len(pick)
    rows, pair_of = np.asarray(rows, int), np.asarray(pair_of, int)
    grads = filter_gradients(guided, probe.images[rows], np.asarray(filters), ap.batch_size)
    masks = probe.extras["masks"][rows, np.asarray([mask_index[pairs[k, 1]] for k in pair_of], int)] \
        if len(rows) else np.zeros((0, *probe.images.shape[1:3]))
    s = mask_shares(grads, masks)
    s0 = mask_shares(filter_gradients(guided0, probe.images[rows], np.asarray(filters), ap.batch_size), masks)
    table = pd.DataFrame({"pair": pair_of, "filter": filters, "au": [f"AU{codes[pairs[k, 1]]}" for k in pair_of],
                          "image": rows, **s, "random_init_energy_share": s0["energy_share"]})
    share, share0, area = _mean(s["energy_share"]), _mean(s0["energy_share"]), _mean(s["area_share"])
    return {"table": table, "summary": {
        "mask_energy_share": share, "mask_area_share": area,
        "mask_energy_ratio": share / area if share is not None and area else None,
        "random_init_mask_energy_ratio": share0 / area if share0 is not None and area else None,
        "pointing_game": _mean(s["pointing_hit"]), "random_init_pointing_game": _mean(s0["pointing_hit"]),
        "n_energy_images": int(len(rows))}}


def _filter_figures(model, guided, deconv, images, maxima, idx, order, titles, ap, out: Path) -> None:
    """Paper Figs. 5-6 for this model, plus its first-layer kernels."""
    scale, _ = rescaling(model)
    conv1 = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    kernel_grid(conv1.get_weights()[0], scale, out / "conv1_kernels.png")
    if not len(idx):
        return
    top = top_n(maxima, ap.top_k)
    shown = order[:ap.max_filters]
    rows = top[shown].ravel()
    chosen = np.repeat(idx[shown], top.shape[1])
    g = filter_gradients(guided, images[rows], chosen, ap.batch_size)
    d = filter_gradients(deconv, images[rows], chosen, ap.batch_size)
    shape = (len(shown), top.shape[1], *images.shape[1:])
    topk_figure(images[rows].reshape(shape), g.reshape(shape), d.reshape(shape), [titles[j] for j in shown],
                out / "filter_topk.png")
    first = top[order, 0]
    g1 = filter_gradients(guided, images[first], idx[order], ap.batch_size)
    filter_grid(images[first], g1, [titles[j] for j in order], out)
