"""`train.precision: auto`: the per-machine choice, the `ferops.precision` tag, and models moved between policies.

The machine is simulated with FEROPS_CPU_FLAGS (its CPU flags) and forced with FEROPS_PRECISION
(serving); both are read once per process, so each test clears the cached choice.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from ferops.train import precision

from conftest import make_params, make_toy_dataset


@pytest.fixture
def machine(monkeypatch):
    """Set this process's simulated CPU flags (and forced precision); the cached choice is cleared around it."""
    def simulate(flags: str | None = None, forced: str | None = None):
        for name, value in ((precision.CPU_FLAGS_ENV, flags), (precision.PRECISION_ENV, forced)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        precision._machine_choice.cache_clear()
        precision.announce.cache_clear()

    yield simulate
    precision._machine_choice.cache_clear()
    precision.announce.cache_clear()


@pytest.mark.parametrize("flags, capabilities, expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, [], "mixed_bfloat16"),
    ({"avx2", "amx_bf16", "amx_tile"}, [], "mixed_bfloat16"),
    ({"avx2", "avx512f"}, [], "float32"),  # AVX-512 without its bf16 extension: bf16 would be emulated
    ({"avx2"}, [(9, 0)], "mixed_bfloat16"),  # H100/H200
    ({"avx2"}, [(8, 0), (8, 6)], "mixed_bfloat16"),
    ({"avx512_bf16"}, [(7, 5)], "mixed_float16"),  # the GPU decides where there is one
    ({"avx2"}, [(8, 6), (7, 0)], "mixed_float16"),  # the weakest card decides for a mirrored pair
    ({"avx2"}, [(6, 1)], "float32"),
])
def test_auto_follows_the_hardware(flags, capabilities, expected):
    assert precision.choose(frozenset(flags), capabilities)[0] == expected


def test_named_policies_pass_through_and_auto_is_said_once(machine, capsys):
    machine("fpu avx2 avx512_bf16")
    assert precision.resolve("float32") == "float32" and precision.resolve("mixed_float16") == "mixed_float16"
    assert precision.resolve("auto") == precision.resolve() == "mixed_bfloat16"
    precision.announce.cache_clear()
    assert precision.announce("auto") == precision.announce("auto") == "mixed_bfloat16"
    assert capsys.readouterr().err.count("ferops: precision auto -> mixed_bfloat16 (CPU reports avx512_bf16)") == 1
    machine("fpu avx2", forced="float32")
    assert precision.resolve("auto") == "float32"


def test_keras_on_jax_on_a_bf16_cpu_computes_in_float32(machine, monkeypatch):
    """XLA:CPU gains nothing from bf16 (the backend ferops predict picks on a CPU): auto keeps float32 there."""
    machine("fpu avx2 avx512_bf16")
    monkeypatch.setattr(precision, "keras_backend", lambda: "jax")
    assert precision.resolve("auto") == "float32"
    assert "Keras on JAX" in precision._machine_choice()[1]
    monkeypatch.setattr(precision, "keras_backend", lambda: "tensorflow")
    machine("fpu avx2 avx512_bf16")
    assert precision.resolve("auto") == "mixed_bfloat16"


def test_a_bad_forced_policy_is_one_line(machine):
    from ferops.errors import FeropsError

    machine("avx2", forced="float8")
    with pytest.raises(FeropsError, match="FEROPS_PRECISION='float8': expected one of float32"):
        precision.resolve()


@pytest.mark.slow
@pytest.mark.parametrize("flags, expected", [("fpu avx2 avx512f avx512_bf16", "mixed_bfloat16"),
                                             ("fpu avx2 fma", "float32")])
def test_cv_tags_what_auto_picked_and_trains_in_it(machine, mlflow_store, tmp_path, flags, expected):
    from ferops.tracking.store import configure
    from ferops.train.cross_validation import cross_validate

    machine(flags)
    params = make_params({"train": {"precision": "auto"}, "cv": {"folds": 2}})
    configure(params.tracking)
    result = cross_validate(make_toy_dataset(n=48, n_subjects=4), params, tmp_path / "cv")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert {r.data.tags.get("ferops.precision") for r in runs} == {expected}
    assert len(runs) == 1 + 2 and mlflow.get_run(result.parent_run_id).data.tags["ferops.precision"] == expected


def _trained(policy: str, tmp_path):
    """A tiny emotion CNN trained in `policy`, saved; (path, model, test images)."""
    from ferops.train.fit import fit
    from ferops.train.tasks import emotion_task

    toy = make_toy_dataset(n=96, n_classes=3, n_subjects=6)
    params = make_params({"train": {"precision": policy, "epochs": 3}})
    model = fit(params, emotion_task(toy.classes), toy.images[:64], toy.labels[:64], augment=False).model
    path = tmp_path / f"{policy}.keras"
    model.save(path)
    return path, model, toy.images[64:]


@pytest.mark.slow
@pytest.mark.parametrize("trained_in, served_in", [("mixed_bfloat16", "float32"), ("float32", "mixed_bfloat16")])
def test_a_model_serves_in_the_loading_machines_policy(machine, tmp_path, trained_in, served_in):
    path, trained, images = _trained(trained_in, tmp_path)
    assert precision.model_policy(trained) == trained_in
    machine("avx2", forced=served_in)
    served = precision.load_keras(path)
    assert precision.model_policy(served) == served_in
    assert served.output.dtype == "float32" and served.count_params() == trained.count_params()
    x = images.astype(np.float32)
    same = (np.asarray(served(x)).argmax(1) == np.asarray(trained(x)).argmax(1)).mean()
    assert same >= 0.99, same
    assert precision.with_policy(served, served_in) is served  # already there: no rebuild


@pytest.mark.slow
def test_bf16_reruns_are_identical_under_deterministic(tmp_path):
    from ferops.train.fit import fit
    from ferops.train.tasks import emotion_task

    toy = make_toy_dataset(n=48, n_classes=3, n_subjects=4)
    params = make_params({"train": {"precision": "mixed_bfloat16", "deterministic": True, "epochs": 2}})
    runs = [fit(params, emotion_task(toy.classes), toy.images, toy.labels) for _ in range(2)]
    assert runs[0].history == runs[1].history
    assert all(np.array_equal(a, b) for a, b in zip(runs[0].model.get_weights(), runs[1].model.get_weights()))


def test_a_model_in_policy_keeps_its_frozen_layers_and_nested_models():
    from ferops.config import load_params
    from ferops.models import Head, build_model
    from ferops.models.sequence import build_sequence_model

    from conftest import ROOT

    params = load_params(ROOT / "params.yaml", {"model": {"width": 0.0625}})
    cnn = build_model(params.model, Head(3, "softmax"), (48, 48, 1))
    sequence = build_sequence_model(cnn, 3, 5, 4, 0.0, 0.0)
    moved = precision.with_policy(sequence, "mixed_bfloat16")
    assert precision.model_policy(moved) == "mixed_bfloat16" and moved.output.dtype == "float32"
    assert moved.get_layer("frame_features").layer.trainable is False
    assert all(np.array_equal(a, b) for a, b in zip(moved.get_weights(), sequence.get_weights()))
    clip = np.random.default_rng(0).integers(0, 255, (2, 5, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(moved(clip)), np.asarray(sequence(clip)), atol=0.05)


# ---------------------------------------------------------------------------- every stage under bf16 (CPU)

BF16 = {"train": {"precision": "mixed_bfloat16"}}


def _tagged_bf16(run_id: str) -> None:
    assert mlflow.get_run(run_id).data.tags["ferops.precision"] == "mixed_bfloat16"


@pytest.mark.slow
def test_au_runs_under_bf16_in_every_mode(mlflow_store, tmp_path):
    """The masked losses and the L1/L2 output penalty under bf16 (it once crashed mixing bf16 into float32)."""
    from ferops.data.dataset import Dataset
    from ferops.experiments.au.stage import run_au
    from ferops.tracking.store import configure

    toy = make_toy_dataset(n=48, n_classes=3, n_subjects=4)
    m = toy.manifest.copy()
    for code in (1, 2):  # the bar in band 1 "is" AU1, band 2 AU2; AU2 uncoded on some rows (masked)
        m[f"AU{code}"] = (toy.labels == code).astype(float)
        m[f"AU{code}_int"] = m[f"AU{code}"] * 3
    m.loc[::10, "AU2"] = np.nan
    Dataset(toy.images, m, toy.classes, "toy_au", {"subjects_known": True}).save(tmp_path / "toy")
    params = make_params({**BF16, "au": {"data": str(tmp_path / "toy"), "modes": ["all_at_once", "one_vs_all"],
                                         "folds": 2, "epochs": 1, "width": 0.125, "refit": False}})
    configure(params.tracking)
    result = run_au(params, out_dir=tmp_path / "out")
    _tagged_bf16(result["run_id"])
    assert {"all_at_once", "one_vs_all"} <= set(result) and (tmp_path / "out" / "intensity.csv").exists()


@pytest.mark.slow
def test_transfer_and_cross_task_run_under_bf16(mlflow_store, tmp_path):
    from ferops.data.domains import render_domain
    from ferops.experiments.cross_task.stage import run_cross_task
    from ferops.experiments.transfer.stage import run_transfer
    from ferops.models import Head, build_model
    from ferops.tracking.store import configure

    params = make_params({**BF16, "domains": {"posed": {"n": 30, "out": str(tmp_path / "posed")},
                                              "wild": {"n": 60, "out": str(tmp_path / "wild")},
                                              "au": {"n": 100, "out": str(tmp_path / "au")}},
                          "transfer": {"datasets": [str(tmp_path / "posed"), str(tmp_path / "wild")], "folds": 2},
                          "au": {"data": str(tmp_path / "au")}})
    for name in ("posed", "wild", "au"):
        render_domain(params.domains[name], params.seed, name)
    configure(params.tracking)
    _tagged_bf16(run_transfer(params, out_dir=tmp_path / "transfer")["run_id"])
    emotion = build_model(params.model, Head(8, "softmax"), (48, 48, 1))  # a float32 model: moved to bf16 on load
    emotion.save(tmp_path / "emotion.keras")
    _tagged_bf16(run_cross_task(params, tmp_path / "emotion.keras", out_dir=tmp_path / "cross_task")["run_id"])


@pytest.mark.slow
def test_micro_runs_under_bf16(tiny_micro, mlflow_store, tmp_path):
    from ferops.experiments.micro import stage as micro_stage

    params = make_params({**BF16, "micro": {"cnn": {"pretrain_epochs": 0}, "register": False},
                          "tracking": {"artifact_root": str(tmp_path / "artifacts")}})
    result = micro_stage.micro(params, tmp_path / "micro", data=tiny_micro)
    _tagged_bf16(result["run_id"])


@pytest.mark.slow
def test_analysis_runs_under_bf16(mlflow_store, tmp_path, monkeypatch):
    """Trained and analysed in bf16 (the loaded model too, whatever this machine's CPU): guided backprop included."""
    from ferops.data.synthfacs_dataset import synthfacs_dataset
    from ferops.experiments.analysis.stage import analyze
    from ferops.tracking.store import configure
    from ferops.train.fit import fit
    from ferops.train.tasks import emotion_task

    posed = synthfacs_dataset("posed", 24, seed=3, masks=False)
    posed.save(tmp_path / "posed")
    synthfacs_dataset("au", 60, seed=4, masks=True).save(tmp_path / "probe")
    params = make_params({**BF16, "dataset": {"processed_dir": str(tmp_path / "posed")},
                          "analysis": {"probe_data": str(tmp_path / "probe")}})
    configure(params.tracking)
    with mlflow.start_run() as trained:
        model = fit(params, emotion_task(posed.classes), posed.images, posed.labels).model
    assert precision.model_policy(model) == "mixed_bfloat16"
    model.save(tmp_path / "model.keras")
    _tagged_bf16(trained.info.run_id)
    monkeypatch.setenv("FEROPS_PRECISION", "mixed_bfloat16")
    analyze(params, tmp_path / "model.keras", tmp_path / "analysis", model_run_id=trained.info.run_id)
    assert (tmp_path / "analysis" / "metrics.json").exists()


@pytest.mark.slow
def test_tune_runs_under_bf16(mlflow_store, tmp_path):
    from ferops.config import load_params, overlay
    from ferops.tuning.study import run_tune

    from conftest import ROOT, TINY

    make_toy_dataset(n=48, n_subjects=8).save(tmp_path / "toy")
    changes = overlay(TINY, {**BF16, "dataset": {"processed_dir": str(tmp_path / "toy"), "name": "toy"},
                             "cv": {"folds": 2}, "tune": {"enabled": True, "trials": 1,
                                                          "storage": f"sqlite:///{tmp_path / 'optuna.db'}"}})
    params = load_params(ROOT / "params.yaml", changes)
    result = run_tune(params, out_dir=tmp_path / "tune", workers=1, params_path=ROOT / "params.yaml", changes=changes)
    trials = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`ferops.kind` = 'tune-trial'",
                                output_format="list")
    assert len(trials) == 2 and all(t.data.tags["ferops.precision"] == "mixed_bfloat16" for t in trials)
    assert result["metrics"]["trials_complete"] == 2
