"""The `ferops` command: one subcommand per pipeline step, each a single call into ferops.

DVC stages run these commands; settings come from params.yaml (`--params`),
and the few options below only override it for interactive use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _params(args):
    from ferops.config import load_params

    return load_params(args.params)


def cmd_generate(args) -> None:
    import dataclasses

    from ferops import pipeline

    params = _params(args)
    overrides = {k: v for k, v in {"preset": args.preset, "n": args.n, "size": args.size,
                                   "channels": args.channels, "format": args.format, "out": args.out}.items()
                 if v is not None}
    sp = dataclasses.replace(params.synthfacs, **overrides)
    out = pipeline.generate(sp, seed=args.seed if args.seed is not None else params.seed,
                            track=not args.no_track, tracking=params.tracking)
    print(f"wrote {sp.preset} x{sp.n} as {sp.format} to {out}")


def cmd_import_data(args) -> None:
    from ferops.data.importing import import_data

    out = import_data(args.format, args.source, raw_root=args.raw_root, name=args.name, dvc=not args.no_dvc)
    print(f"imported to {out}" + ("" if args.no_dvc else "; DVC tracks it now: `git add data.dvc` (or the .dvc file "
                                  "DVC named) and commit to version it"))


def cmd_preprocess(args) -> None:
    from ferops import pipeline

    print(f"wrote {pipeline.preprocess(_params(args))}")


def cmd_validate(args) -> None:
    from ferops import pipeline
    from ferops.data.validation import ValidationError

    try:
        report = pipeline.validate(_params(args), report_path=Path(args.report), track=not args.no_track)
    except ValidationError as exc:
        print(exc.report.summary(), file=sys.stderr)
        sys.exit(1)
    print(report.summary())


def cmd_train(args) -> None:
    from ferops import pipeline

    metrics = pipeline.holdout_train(_params(args), out_dir=Path(args.out))
    print(f"holdout accuracy {metrics['accuracy']:.4f} (run {metrics['run_id']}, model {metrics['model_uri']})")


def cmd_cv(args) -> None:
    from ferops import pipeline
    from ferops.tracking.store import ui_hint

    params = _params(args)
    result = pipeline.cross_validate(params, out_dir=Path(args.out))
    m = result.metrics
    print(f"{m['folds']}-fold CV ({m['protocol_description']}): "
          f"accuracy {m['cv_accuracy_mean']:.4f} ± {m['cv_accuracy_std']:.4f}")
    if result.promotion:
        p = result.promotion
        aliases = "candidate, champion" if p.promoted else "candidate"
        print(f"registered {p.name} v{p.version} as {aliases}: {p.reason}")
    print(ui_hint(params.tracking))


def cmd_evaluate(args) -> None:
    from ferops import pipeline

    metrics = pipeline.evaluate(args.model, _params(args), out_dir=Path(args.out))
    print(f"accuracy {metrics['accuracy']:.4f} on {metrics['n_scored']} images of {metrics['dataset']}")


def cmd_predict(args) -> None:
    from ferops.config import load_params
    from ferops.predict import load_model, predict_images
    from ferops.tracking.store import configure

    if Path(args.params).exists():
        configure(load_params(args.params).tracking)
    model, classes = load_model(args.model)
    print(json.dumps(predict_images(model, classes, args.images), indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferops", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="settings file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="render a SynthFACS dataset in a real dataset's on-disk format")
    p.add_argument("--preset", choices=["posed", "wild", "micro"])
    p.add_argument("--n", type=int, help="samples: sequences (posed, micro) or images (wild)")
    p.add_argument("--size", type=int)
    p.add_argument("--channels", type=int, choices=[1, 3])
    p.add_argument("--format", choices=["ck+", "fer2013", "casme2", "folders"])
    p.add_argument("--out", help="output folder (or .csv for fer2013)")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-track", action="store_true", help="do not log the contact sheet to MLflow")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("import-data", help="copy your own dataset copy under data/raw/ and `dvc add` it")
    p.add_argument("source", help="path to the dataset as shipped")
    p.add_argument("--format", required=True, choices=["ck+", "fer2013", "casme2", "folders"])
    p.add_argument("--name", help="folder name under data/raw (default: from the format)")
    p.add_argument("--raw-root", default="data/raw")
    p.add_argument("--no-dvc", action="store_true", help="copy only, do not run `dvc add`")
    p.set_defaults(func=cmd_import_data)

    p = sub.add_parser("preprocess", help="raw dataset -> aligned face crops (images.npy + manifest.parquet)")
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("validate", help="Great Expectations checks on the processed dataset")
    p.add_argument("--report", default="outputs/validation.json")
    p.add_argument("--no-track", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("train", help="one tracked train/validation run")
    p.add_argument("--out", default="outputs/train")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cv", help="k-fold cross-validation, refit, register and promote")
    p.add_argument("--out", default="outputs/cv")
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("evaluate", help="score a model on the processed dataset")
    p.add_argument("--model", default="models:/fer-emotion@champion", help="registry URI or .keras path")
    p.add_argument("--out", default="outputs/evaluate")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="emotion probabilities for image files, as JSON")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", default="models:/fer-emotion@champion", help="registry URI or .keras path")
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from ferops.config import ParamsError
    from ferops.data.formats import DatasetFormatError

    try:
        args.func(args)
    except (ParamsError, DatasetFormatError, FileNotFoundError) as exc:
        print(f"ferops {args.command}: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
