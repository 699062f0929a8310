"""The `ferops` command: one subcommand per pipeline step, each a single call into ferops.

DVC stages run these commands; settings come from params.yaml (`--params`),
and the few options below only override it for interactive use.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _params(args):
    """params.yaml, parsed once per command (main() reads it before TensorFlow loads)."""
    if getattr(args, "loaded_params", None) is None:
        from ferops.config import load_params

        args.loaded_params = load_params(args.params)
    return args.loaded_params


def _check_store(args, params) -> None:
    """A damaged, non-database or read-only SQLite store is one line before the command writes anything."""
    from ferops.tracking.sqlite_check import check_sqlite_store

    if args.command in NO_STORE_COMMANDS or getattr(args, "no_track", False):
        return
    # reconcile is not among them: on a fresh clone (no store yet) every stage record is stale, and
    # `make run` starts with it; MLflow creates the store as any writing command would.
    reads_only = getattr(args, "registry_command", None) == "list"
    check_sqlite_store(os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.tracking_uri, write=not reads_only)


def _out_of_memory(exc: BaseException) -> bool:
    """TensorFlow's or Python's out-of-memory error (a too wide model or too large batch for this machine)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError"


def cmd_generate(args) -> None:
    import dataclasses

    from ferops.prepare.generate import generate

    params = _params(args)
    overrides = {k: v for k, v in {"preset": args.preset, "n": args.n, "size": args.size,
                                   "channels": args.channels, "format": args.format, "out": args.out}.items()
                 if v is not None}
    sp = dataclasses.replace(params.synthfacs, **overrides)
    out = generate(sp, seed=args.seed if args.seed is not None else params.seed,
                            track=not args.no_track, tracking=params.tracking)
    print(f"wrote {sp.preset} x{sp.n} as {sp.format} to {out}")


def cmd_import_data(args) -> None:
    from ferops.data.importing import import_data

    out = import_data(args.format, args.source, raw_root=args.raw_root, name=args.name, dvc=not args.no_dvc)
    print(f"imported to {out}" + ("" if args.no_dvc else "; DVC tracks it now: `git add data.dvc` (or the .dvc file "
                                  "DVC named) and commit to version it"))


def cmd_preprocess(args) -> None:
    from ferops.prepare.preprocess import preprocess

    print(f"wrote {preprocess(_params(args))}")


def cmd_validate(args) -> None:
    from ferops.data.validation import ValidationError
    from ferops.prepare.validate import validate

    try:
        report = validate(_params(args), report_path=Path(args.report), track=not args.no_track)
    except ValidationError as exc:
        print(exc.report.summary(), file=sys.stderr)
        sys.exit(1)
    print(report.summary())


def cmd_train(args) -> None:
    from ferops.experiments.emotion.holdout import holdout_train

    metrics = holdout_train(_params(args), out_dir=Path(args.out))
    print(f"holdout accuracy {metrics['accuracy']:.4f} (run {metrics['run_id']}, model {metrics['model_uri']})")


def cmd_cv(args) -> None:
    from ferops.experiments.emotion.cv import cross_validate

    m = cross_validate(_params(args), out_dir=Path(args.out)).metrics
    print(f"{m['folds']}-fold CV ({m['protocol_description']}): "
          f"accuracy {m['cv_accuracy_mean']:.4f} ± {m['cv_accuracy_std']:.4f} (fold mean ± std), "
          f"macro F1 {m['cv_f1_macro']:.4f} (pooled out-of-fold)")


def cmd_refit(args) -> None:
    from ferops.experiments.emotion.refit import refit

    summary = refit(_params(args), out_dir=Path(args.out))
    print(f"final model: run {summary['run_id']}, {summary['model_uri']}" if summary["refit"] else summary["reason"])


def cmd_register(args) -> None:
    from ferops.experiments.emotion.register import register
    from ferops.tracking.store import ui_hint

    params = _params(args)
    record = register(params, out_path=Path(args.out))
    if record["registered"]:
        aliases = "candidate, champion" if record["champion"] else "candidate"
        print(f"registered {record['model']} v{record['version']} as {aliases}: {record['reason']}")
    else:
        print(f"nothing registered: {record['reason']}")
    print(ui_hint(params.tracking))


def cmd_evaluate(args) -> None:
    from ferops.experiments.emotion.evaluate import evaluate

    metrics = evaluate(args.model, _params(args), out_dir=Path(args.out))
    print(f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f} on {metrics['n_scored']} images "
          f"of {metrics['dataset']} ({metrics['scored']})")


def cmd_predict(args) -> None:
    from ferops.predict import run

    status = run(args.model, args.inputs, args.params, out=args.out, annotate=args.annotate,
                 whole_image=args.whole_image, max_faces=args.max_faces, stride=args.stride,
                 progress=not args.no_progress, trust_model=args.trust_model, runtime=args.runtime)
    if status:
        sys.exit(status)


def cmd_package(args) -> None:
    from ferops.serving.package import package

    r = package(_params(args), out_path=Path(args.out))["registry"]
    print(f"registered {r['model']} v{r['version']} as candidate, champion: {r['reason']}")


def cmd_reconcile(args) -> None:
    from ferops.tracking.stale_records import clear_stale_records

    for line in clear_stale_records(_params(args)):
        print(line)


def cmd_domain(args) -> None:
    from ferops.data.domains import render_domain
    from ferops.errors import FeropsError, shown

    params = _params(args)
    if args.name not in params.domains:
        raise FeropsError(f"{shown(args.name)} is not in params.yaml domains; known: {sorted(params.domains)}")
    print(f"wrote domain {args.name} to {render_domain(params.domains[args.name], params.seed, args.name)}")


def cmd_au(args) -> None:
    from ferops.experiments.au.stage import run_au

    result = run_au(_params(args), out_dir=Path(args.out))
    for mode in ("all_at_once", "one_vs_all", "all_at_once_on_one_vs_all_aus"):
        if mode in result:
            m = result[mode]
            print(f"AU {mode}: mean F1 {m['f1_mean']:.4f} over {m['n_aus']} AUs (always-present "
                  f"{m['always_present_f1_mean']:.4f}; at threshold 0.5 {m['f1_at_half_mean']:.4f}), AUROC mean "
                  f"{m['auroc_mean']:.4f} min {m['auroc_min']:.4f}; accuracy {m['accuracy_mean']:.4f} vs "
                  f"always-absent {m['always_absent_accuracy_mean']:.4f}")
    if "intensity" in result:
        m = result["intensity"]
        print(f"AU intensity: MSE {m['mse_mean']:.4f}, ICC(3,1) {m['icc_mean']:.4f}")
    r = result["registry"]
    if r["registered"]:
        print(f"registered {r['model']} v{r['version']}{' as champion' if r['champion'] else ''}: {r['reason']}")
    else:
        print(f"nothing registered: {r['reason']}")


def cmd_transfer(args) -> None:
    from ferops.experiments.transfer.stage import MODES, run_transfer

    metrics = run_transfer(_params(args), out_dir=Path(args.out))["metrics"]
    print(f"within-dataset CV mean {metrics['within_mean']:.4f}; off-diagonal means: "
          + ", ".join(f"{mode} {metrics[mode]['off_diagonal_mean']:.4f}" for mode in MODES))


def cmd_cross_task(args) -> None:
    from ferops.experiments.cross_task.stage import run_cross_task

    result = run_cross_task(_params(args), args.emotion_model, out_dir=Path(args.out))
    print(result["curve"].pivot(index="n_subjects", columns="mode", values="f1_mean").round(4).to_string())


def cmd_analyze(args) -> None:
    from ferops.experiments.analysis.stage import analyze

    m = analyze(_params(args), args.model, out_dir=Path(args.out))
    auroc = "n/a" if m["probe_auroc_matched"] is None else f"{m['probe_auroc_matched']:.3f}"
    ratio = "n/a" if m["mask_energy_ratio"] is None else f"{m['mask_energy_ratio']:.2f}"
    print(f"{m['layer']}: {m['alive']}/{m['total']} filters alive; matched (P = 1 over top-{m['top_n']}) "
          f"{m['matched']}, random init {m['matched_by_chance']}, AUs shuffled within emotion "
          f"{m['matched_by_cooccurrence']:.1f}; probe AUROC of {m['pairs']} {auroc}; mask-energy ratio {ratio} "
          f"(run {m['run_id']}, files in {args.out})")


def cmd_micro(args) -> None:
    from ferops.experiments.micro.stage import micro

    r = micro(_params(args), out_dir=Path(args.out))
    for name in ("5class", "3class"):
        print(f"LOSO {name} ({r['n_folds']} subjects): " + "; ".join(
            f"{model} acc {m[name]['accuracy']:.4f} UF1 {m[name]['uf1']:.4f} UAR {m[name]['uar']:.4f}"
            for model, m in r["metrics"].items()))
    reg = r["registry"]
    if reg["registered"]:
        print(f"registered {reg['model']} v{reg['version']}{' as champion' if reg['champion'] else ''}: "
              f"{reg['reason']}")
    print(f"run {r['run_id']}, {r['wall_s']} s, files in {args.out}")


def cmd_tune(args) -> None:
    from ferops.tuning.study import run_tune

    r = run_tune(_params(args), out_dir=Path(args.out), workers=args.workers, params_path=args.params)
    if not r["enabled"]:
        print(f"tuning off (tune.enabled: false): wrote {args.out}/best_params.yaml without overrides")
        return
    m = r["metrics"]
    print(f"tuned {len(r['studies'])} outer folds: {m['trials_complete']} trials complete, {m['trials_pruned']} "
          f"pruned, {m['trials_failed']} failed; best inner val accuracy (mean over folds) "
          f"{m['inner_val_accuracy_mean']:.4f}; overlay {args.out}/best_params.yaml (run {r['run_id']})")


def cmd_results(args) -> None:
    from ferops.results import registration_lines, summary_lines

    for line in summary_lines() or ["no stage results yet: run `make run` (or `dvc repro`)"]:
        print(line)
    if registered := registration_lines():
        print("registered:")
        for line in registered:
            print(f"  {line}")


def cmd_registry_list(args) -> None:
    from ferops.tracking.registry_commands import list_versions

    print(list_versions(_params(args), name=args.name))


def cmd_registry_promote(args) -> None:
    from ferops.tracking.registry_commands import promote

    print(promote(_params(args), args.version, why=args.why, name=args.name))


def cmd_registry_rollback(args) -> None:
    from ferops.tracking.registry_commands import rollback

    print(rollback(_params(args), why=args.why, name=args.name))


FORMATS = ["ck+", "fer2013", "casme2", "folders"]
# No TensorFlow needed: each DVC stage is a fresh process, and `import tensorflow` costs ~7 s of it here.
LIGHT_COMMANDS = {"results", "reconcile", "registry", "import-data", "generate", "preprocess", "validate", "domain",
                  "register"}
OWN_PARAMS_COMMANDS = {"results", "import-data", "predict"}  # read no params.yaml, or only when one exists
NO_STORE_COMMANDS = {"preprocess", "domain"}  # never open the tracking store


def build_parser() -> argparse.ArgumentParser:
    from ferops import __version__
    from ferops.stages import EMOTION_MODEL, out

    parser = argparse.ArgumentParser(prog="ferops", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ferops {__version__}")
    parser.add_argument("--params", default="params.yaml", help="settings file (default: params.yaml)")
    # Accepted after the subcommand too (`ferops cv --params x.yaml`); SUPPRESS keeps the top-level value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", default=argparse.SUPPRESS, help="settings file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one pipeline step or tool")

    def command(name, func, help):
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("generate", cmd_generate, "render a SynthFACS dataset in a real dataset's on-disk format")
    p.add_argument("--preset", choices=["posed", "wild", "micro"], help="posed (CK+-like), wild (FER2013-like) "
                   "or micro (CASME II-like); default: synthfacs.preset")
    p.add_argument("--n", type=int, help="samples: sequences (posed, micro) or images (wild); default: synthfacs.n")
    p.add_argument("--size", type=int, help="image side in pixels; default: synthfacs.size")
    p.add_argument("--channels", type=int, choices=[1, 3], help="1 gray or 3 RGB; default: synthfacs.channels")
    p.add_argument("--format", choices=FORMATS, help="on-disk format to write; default: synthfacs.format")
    p.add_argument("--out", help="output folder (or .csv for fer2013); default: synthfacs.out")
    p.add_argument("--seed", type=int, help="random seed; default: seed")
    p.add_argument("--no-track", action="store_true", help="do not log the contact sheet to MLflow")

    p = command("import-data", cmd_import_data, "copy your own dataset copy under data/raw/ and version it with DVC")
    p.add_argument("source", help="path to the dataset as shipped")
    p.add_argument("--format", required=True, choices=FORMATS, help="the dataset's on-disk format")
    p.add_argument("--name", help="folder name under data/raw (default: from the format)")
    p.add_argument("--raw-root", default="data/raw", help="where raw datasets live (default: data/raw)")
    p.add_argument("--no-dvc", action="store_true", help="copy only, do not update data.dvc")

    command("preprocess", cmd_preprocess, "raw dataset -> aligned face crops (images.npy + manifest.parquet)")

    p = command("validate", cmd_validate, "Great Expectations checks on the processed dataset")
    p.add_argument("--report", default=out("validate"), help="where the JSON report goes")
    p.add_argument("--no-track", action="store_true", help="do not log the report to MLflow")

    p = command("train", cmd_train, "one tracked train/test run on a subject-grouped holdout")
    p.add_argument("--out", default=out("train"), help="folder for metrics.json and the confusion matrix")

    p = command("cv", cmd_cv, "k-fold cross-validation of the recipe in params.yaml")
    p.add_argument("--out", default=out("cv"), help="folder for metrics, predictions and plots")

    p = command("refit", cmd_refit, "train the final model on all data, linked to its CV run")
    p.add_argument("--out", default=out("refit"), help="folder for model.keras, run.json, training_rows.json")

    p = command("register", cmd_register, "register the final model; champion only over a comparable, weaker one")
    p.add_argument("--out", default=out("register"), help="where the registration record goes")

    p = command("evaluate", cmd_evaluate, "score a model on the images of the processed dataset it never saw")
    p.add_argument("--model", default="models:/fer-emotion@champion", help="registry URI or .keras path")
    p.add_argument("--out", default=out("evaluate"), help="folder for metrics.json and the confusion matrix")

    p = command("predict", cmd_predict, "per-face emotions (and AUs) for images, folders and videos, as CSV/JSON")
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) and video files")
    p.add_argument("--model", default="models:/fer-pipeline@champion",
                   help="fer-pipeline bundle (ferops package), or a plain emotion model: registry URI or .keras path")
    p.add_argument("--out", help="results file, .csv or .json (default: JSON on stdout)")
    p.add_argument("--annotate", help="draw boxes and labels: out.mp4 (one video input) or a folder")
    p.add_argument("--whole-image", action="store_true",
                   help="each image is already one face crop (SynthFACS, FER2013, CK+48): no detection")
    p.add_argument("--max-faces", type=int, help="largest faces kept per image or frame (default: serving.max_faces)")
    p.add_argument("--stride", type=int, help="video: score every Nth frame (default: serving.stride)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    p.add_argument("--runtime", choices=("auto", "keras", "numpy"), default="auto",
                   help="what computes the models: keras (this machine's precision, e.g. bf16), numpy (float32, no "
                        "Keras start-up); auto: numpy for up to 256 photos and no video, else keras")
    p.add_argument("--trust-model", action="store_true", help="load a pyfunc model from outside the registry "
                   "(a local folder, file://, s3://): MLflow unpickles its code, so only from authors you trust")

    p = command("package", cmd_package, "bundle detector, crop and the emotion/AU champions as fer-pipeline, "
                "register it as champion")
    p.add_argument("--out", default=out("package"), help="where the package record goes")

    command("reconcile", cmd_reconcile, "remove stage records whose runs or versions the tracking store lacks, "
            "so `dvc repro` redoes them")

    p = command("domain", cmd_domain, "render one extra SynthFACS dataset of params.yaml domains (processed form)")
    p.add_argument("name", help="a key of params.yaml domains (au, posed, wild, webcam)")

    p = command("au", cmd_au, "AU detection: subject-independent CV of AU heads, per-AU tables, register fer-au")
    p.add_argument("--out", default=out("au"), help="folder for per-AU tables, plots and metrics")

    p = command("transfer", cmd_transfer, "train-on-A / test-on-B matrices: zero-shot, frozen and fine-tuned")
    p.add_argument("--out", default=out("transfer"), help="folder for the matrices (CSV, PNG) and metrics")

    p = command("cross-task", cmd_cross_task, "AU heads on the emotion backbone vs from scratch, by training size")
    p.add_argument("--emotion-model", default=EMOTION_MODEL, help="the emotion model to start from")
    p.add_argument("--out", default=out("cross-task"), help="folder for the learning curve and metrics")

    p = command("analyze", cmd_analyze, "filter <-> Action Unit analysis of an emotion model: P(j,u), chance "
                "levels, AU probe AUROC, mask energy, filter images")
    p.add_argument("--model", default=EMOTION_MODEL, help="registry URI or .keras path to analyse")
    p.add_argument("--out", default=out("analyze"), help="folder for tables, figures, metrics.json and run.json")

    p = command("micro", cmd_micro, "micro-expressions: CNN+LSTM vs LBP-TOP, leave-one-subject-out, UF1/UAR; "
                "registers fer-micro")
    p.add_argument("--out", default=out("micro"), help="folder for metrics.json, run.json, tables and plots")

    p = command("tune", cmd_tune, "Optuna study per outer CV fold on its training subjects (nested CV); "
                "writes the overlay cv and refit train with")
    p.add_argument("--workers", type=int, help="worker processes on each study (default: tune.workers)")
    p.add_argument("--out", default=out("tune"), help="folder for best_params.yaml, trials.csv and plots")
    command("results", cmd_results, "the headline figure of every stage that has run, one line each")

    p = command("registry", None, "list, promote or roll back registered model versions")
    reg = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION", help="list | promote | rollback")
    for name, func, help in (("list", cmd_registry_list, "versions with aliases, scores and comparability keys"),
                             ("promote", cmd_registry_promote, "make a version champion by hand"),
                             ("rollback", cmd_registry_rollback, "give champion back to the previous champion")):
        r = reg.add_parser(name, parents=[common], help=help, description=help)
        r.set_defaults(func=func)
        r.add_argument("--name", help="registered model (default: tracking.model_name)")
        if name == "promote":
            r.add_argument("version", help="version number to promote")
        if name != "list":
            r.add_argument("--why", required=True, help="reason, recorded on the version with who and when")
    return parser


def run_command(argv: list[str]) -> None:
    """One ferops command in this process, failures raised rather than turned into exit codes.

    Prefect flows run each DVC stage by handing the stage's own `cmd` from dvc.yaml
    to this function, so a stage run by a flow and one run by `dvc repro` are the same call.
    """
    args = build_parser().parse_args(argv)
    args.func(args)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command not in OWN_PARAMS_COMMANDS:  # a bad params.yaml fails in 0.1 s and 30 MB, before TensorFlow
        from ferops.errors import FeropsError

        try:
            _check_store(args, _params(args))
        except FeropsError as exc:
            print(f"ferops {args.command}: {exc}", file=sys.stderr)
            sys.exit(2)
    if args.command == "predict":  # start-up decides one photo's time: Keras on JAX where installed, and
        from ferops.serving.backend import choose_backend  # loaded only when NumPy cannot do (predict)

        choose_backend()
    elif args.command not in LIGHT_COMMANDS:  # before anything imports keras: no GPU-build start-up chatter
        from ferops.quiet_tf import import_tensorflow

        import_tensorflow()
    if argv is None:  # run as the `ferops` program (not main([...]) from tests or notebooks): own Ctrl-C/SIGTERM
        from ferops.tracking.run_safety import install_interrupt_handlers

        install_interrupt_handlers()
    import logging

    import mlflow
    from mlflow.exceptions import MlflowException

    from ferops.errors import FeropsError, shown_key

    # MLflow announces creating its SQLite tables on a fresh store; a newcomer's first command should not
    # open with that (real problems still come as warnings and errors).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    try:
        args.func(args)
    except (FeropsError, FileNotFoundError) as exc:  # a missing file's message names it
        print(f"ferops {args.command}: {exc}", file=sys.stderr)
        sys.exit(2)
    except MlflowException as exc:  # the store refused: say so in one line, not forty
        first = (str(exc.message if hasattr(exc, "message") else exc).strip().splitlines() or [""])[0]
        print(f"ferops {args.command}: tracking store {mlflow.get_tracking_uri()}: {shown_key(first, 120)}",
              file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        if not _out_of_memory(exc):
            raise
        print(f"ferops {args.command}: out of memory ({type(exc).__name__}); lower model.width or "
              f"train.batch_size in {args.params}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
