"""The ``vaeas`` command line: the only interface Snakemake rules and DVC stages call.

Each subcommand validates its input (params.yaml, paths, values) before any compute starts and
writes its one output file atomically. Input errors are printed as a single line
``vaeas: error: <message>`` with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import VaeasError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params.yaml to read (default: %(default)s)")
    p.add_argument("--profile", default=None, help="profile under 'profiles' (default: the file's 'profile' key)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set model.decoder_layers=3 (repeatable)")


def _config(args):
    from .config import load_config

    return load_config(args.params, profile=args.profile, overrides=args.overrides)


def cmd_fetch(args) -> None:
    from . import data

    cfg = _config(args)
    data.fetch(args.dataset, cfg.data)


def cmd_process(args) -> None:
    from . import data

    cfg = _config(args)
    data.process(args.dataset, cfg.data)


def cmd_train(args) -> None:
    from .training import RunSpec, train

    cfg = _config(args)
    spec = RunSpec(args.dataset, args.objective, args.alpha, args.beta, args.seed)
    spec.validate()
    path = train(cfg, spec, args.out, progress=not args.quiet)
    print(f"vaeas: wrote {path}")


def cmd_evaluate(args) -> None:
    from .evaluation import evaluate, load_for_eval
    from .io import write_json

    model, meta = load_for_eval(args.model, args.device)
    row = evaluate(model, meta, args.data_root, progress=not args.quiet)
    write_json(args.out, row)
    cols = ("nll_test", "kl_test", "au", "nll_train", "kl_train", "mi", "md", "sc")
    print("  ".join(f"{c}={row[c]:.2f}" for c in cols if c in row))


def cmd_mc_estimate(args) -> None:
    import pandas as pd

    from .evaluation import load_for_eval, monte_carlo
    from .io import atomic_path

    model, meta = load_for_eval(args.model, args.device)
    frame = pd.DataFrame(monte_carlo(model, meta, args.data_root))
    with atomic_path(args.out) as tmp:
        frame.to_csv(tmp, index=False)
    print(frame.groupby("size")[["mi", "md"]].agg(["mean", "std"]).to_string())


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model file written by 'vaeas train'")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--data-root", default=None, help="data root (default: the model's data.root)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaeas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"vaeas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fetch", help="download and sha256-verify a data set's raw files")
    p.add_argument("dataset", help="mnist, omniglot or digits")
    _add_config_args(p)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("process", help="build the canonical processed file of a data set")
    p.add_argument("dataset", help="mnist, omniglot or digits")
    _add_config_args(p)
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("train", help="train VAE or VAE-AS; resumes from its checkpoint")
    p.add_argument("--dataset", required=True, help="mnist, omniglot or digits")
    p.add_argument("--objective", default="vaeas", help="vae (ELBO) or vaeas (eq. 3)")
    p.add_argument("--alpha", type=float, default=1.0, help="weight of MI in eq. 3")
    p.add_argument("--beta", type=float, default=1.0, help="weight of MD in eq. 3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="model file to write (e.g. runs/.../model.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="every Table 2 column of a trained model -> JSON")
    _add_model_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("mc-estimate", help="Monte Carlo MI and MD for each S of evaluation.mc_sizes -> CSV")
    _add_model_args(p)
    p.set_defaults(func=cmd_mc_estimate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except VaeasError as exc:
        print(f"vaeas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaeas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
