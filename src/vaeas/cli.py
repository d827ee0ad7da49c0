"""The ``vaeas`` command line: the only interface Snakemake rules and DVC stages call.

Each subcommand validates its input (params.yaml, paths, values) before any compute starts and
writes its one output file atomically. Input errors are printed as a single line
``vaeas: error: <message>`` with exit status 2; a failure of the machine (a full disk, a folder
that cannot be written) as one such line naming the path, with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__, objectives, package_versions
from .config import parse_overrides
from .errors import VaeasError, describe_os_error


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params.yaml to read (default: %(default)s)")
    p.add_argument("--profile", default=None, help="profile under 'profiles' (default: the file's 'profile' key)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set model.decoder_layers=3 (repeatable)")


def _config(args):
    from .experiments import load_config

    return load_config(args.params, profile=args.profile, overrides=args.overrides)


def cmd_fetch(args) -> None:
    from . import data

    cfg = _config(args)
    data.fetch(args.dataset, cfg.data)


def cmd_process(args) -> None:
    from . import data

    cfg = _config(args)
    data.process(args.dataset, cfg.data)


def cmd_resolve(args) -> None:
    from . import contract, experiments

    cfg = _config(args)
    experiments.validate(cfg)
    if args.dvc_yaml:
        # The guard stage of dvc.yaml: stop before any job when dvc.yaml no longer describes
        # the profile's grid (profile switched, runs or seeds added or removed).
        _check_dvc_yaml(cfg, args.params, args.dvc_yaml)
    written = contract.write_run_configs(cfg, args.overrides)
    total = len(experiments.distinct(experiments.runs(cfg))) * len(experiments.seeds(cfg))
    print(f"vaeas: profile '{cfg.profile}': {total} run configurations, {len(written)} changed")


def _check_dvc_yaml(cfg, params: str, path: str) -> None:
    from .pipeline import dvc_yaml, load_raw

    current = open(path).read() if os.path.exists(path) else ""
    if current != dvc_yaml(cfg, load_raw(params), root=Path(params).parent):
        raise VaeasError(f"{path} does not describe profile '{cfg.profile}' of {params} (profile, runs or seeds changed); "
                         f"run 'vaeas dvc-yaml' then 'dvc repro' again")


def cmd_train(args) -> None:
    from . import contract, experiments, finished
    from .run import RunSpec
    from .training import train

    if args.config:
        if args.run or args.dataset or args.overrides or args.profile:
            raise VaeasError("--config carries the whole run configuration: give it without --run, --dataset, --profile or --set")
        cfg, spec, run = contract.load(args.config)
        out = args.out or str(Path(args.config).with_name(experiments.MODEL_FILE))
    elif args.run:
        if args.dataset:
            raise VaeasError("give either --run or --dataset, not both")
        cfg = _config(args)
        run = experiments.resolve(cfg, args.run)
        # The command line's --set wins over the run's (and its experiment's) own set:.
        cfg = experiments.config_for(cfg, run, parse_overrides(args.overrides))
        if args.hyper:
            raise VaeasError("--param is for an ad-hoc --dataset run; a run of the grid takes its hyper-parameters from params.yaml")
        spec, out = run.spec(args.seed), args.out
    elif args.dataset:
        cfg = _config(args)
        spec = RunSpec(args.dataset, args.objective, _hyper_parameters(args.hyper), args.seed, where="--{}")
        out = args.out
    else:
        raise VaeasError("give --config runs/.../config.json, --run EXPERIMENT.RUN (from params.yaml) or --dataset")
    if not out:
        raise VaeasError("give --out MODEL.pt")
    if args.config and finished.restore(args.config, out):
        print(f"vaeas: {out}: restored the model already trained with this configuration ({out}.kept)")
        return
    from .progress import training_summary

    mode = args.progress or ("none" if args.quiet else "bar")
    path = train(cfg, spec, out, progress={"bar": True, "lines": "lines", "none": False}[mode])
    if args.config:
        finished.keep(args.config, out)
    print(f"vaeas: wrote {path}{training_summary(spec.describe(), path)}")



def _hyper_parameters(items: list[str]) -> dict:
    """``--param KEY=VALUE`` (repeatable) as {KEY: VALUE}, VALUE read as YAML (``0.5``)."""
    import yaml

    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise VaeasError(f"--param {item!r}: expected KEY=VALUE, e.g. --param beta=0.5")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise VaeasError(f"--param {item!r}: the value is not valid YAML") from None
    return out


def _model_and_meta(args):
    """The model and its metadata; with a run configuration (``--config``, or config.json beside
    the model) the settings come from it, never from the model file, and the model must have been
    trained with its training sections."""
    from . import contract
    from .evaluation import load_for_eval

    model, meta = load_for_eval(args.model, args.device)
    path = args.config or str(Path(args.model).with_name(contract.CONFIG_FILE))
    if not args.config and not os.path.exists(path):
        return model, meta, None       # a model outside the grid: its own recorded settings
    cfg, spec, run = contract.load(path)
    why = contract.mismatch(path, meta)
    if why:
        raise VaeasError(f"{args.model} was not trained with the configuration of {path} ({why}); "
                         f"rerun 'vaeas train --config {path}'")
    return model, {**meta, "cfg": cfg, "spec": spec}, run["run_id"]


def cmd_evaluate(args) -> None:
    from .evaluation import evaluate
    from .io import write_json

    model, meta, run_id = _model_and_meta(args)
    row = evaluate(model, meta, args.data_root, progress=not args.quiet)
    if run_id is not None:
        row["run_id"] = run_id
    write_json(args.out, row)
    cols = ("nll_test", "kl_test", "au", "nll_train", "kl_train", "mi", "md", "sc")
    print("  ".join(f"{c}={row[c]:.2f}" for c in cols if c in row))


def cmd_mc_estimate(args) -> None:
    import pandas as pd

    from .evaluation import monte_carlo
    from .io import atomic_path

    model, meta, run_id = _model_and_meta(args)
    frame = pd.DataFrame(monte_carlo(model, meta, args.data_root))
    if run_id is not None:
        frame.insert(0, "run_id", run_id)
    with atomic_path(args.out) as tmp:
        frame.to_csv(tmp, index=False)
    print(frame.groupby("size")[["mi", "md"]].agg(["mean", "std"]).to_string())


def _report_command(name: str, *arg_names: str):
    """``vaeas <name>``: the report driver ``make_<name>`` called with the config and ``arg_names``
    (imported when run, so that ``vaeas --help`` does not import pandas)."""
    def command(args) -> None:
        from .report import drivers

        getattr(drivers, f"make_{name}")(_config(args), *(getattr(args, a) for a in arg_names))
    return command


cmd_seeds = _report_command("seeds", "experiment", "carry_over", "allow_missing")
cmd_baselines = _report_command("baselines", "experiment")
cmd_scaling = _report_command("scaling")
cmd_table = _report_command("table", "table")
cmd_figure = _report_command("figure", "name")
cmd_claims = _report_command("claims")
cmd_report = _report_command("report", "params")


def cmd_verify(args) -> None:
    from .verify import main

    main(_config(args), args)


def cmd_dvc_yaml(args) -> None:
    from . import experiments
    from .io import write_text
    from .pipeline import dvc_yaml, load_raw

    cfg = _config(args)
    experiments.validate(cfg)
    experiments.require_runs(cfg, args.params)
    text = dvc_yaml(cfg, load_raw(args.params), root=Path(args.params).parent)
    if args.check:
        current = open(args.out).read() if os.path.exists(args.out) else ""
        if current != text:
            raise VaeasError(f"{args.out} is out of date with {args.params}; run 'vaeas dvc-yaml --profile {cfg.profile}'")
        return
    write_text(args.out, text)
    print(f"vaeas: wrote {args.out}")


def cmd_check(args) -> None:
    from . import experiments
    from .experiments import check_params

    # Every profile is checked, not only the one in force: a profile's error is found now.
    cfg = check_params(args.params, profile=args.profile, overrides=args.overrides)
    experiments.validate(cfg)
    experiments.require_runs(cfg, args.params)
    print(f"vaeas: {args.params} is valid (profile '{cfg.profile}', {len(experiments.runs(cfg))} runs x {len(experiments.seeds(cfg))} seeds)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model file written by 'vaeas train'")
    p.add_argument("--config", default=None,
                   help="the run's config.json (default: config.json beside the model, if any; else the model's own settings)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--data-root", default=None, help="data root (default: the model's data.root)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def version_text() -> str:
    """``vaeas --version``: this package, Python, and the key packages as installed."""
    import platform

    versions = package_versions()
    lines = [f"vaeas {__version__}", f"  python {platform.python_version()}"]
    lines += [f"  {name} {version or '(not installed)'}" for name, version in versions.items() if name != __package__]
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """argparse's own version action reflows its text into one paragraph: print it as is."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaeas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version of vaeas and of the key packages (torch, snakemake, ...) and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fetch", help="download and sha256-verify a data set's raw files")
    p.add_argument("dataset", help="mnist, omniglot, digits or omniglot-mini")
    _add_config_args(p)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("process", help="build the canonical processed file of a data set")
    p.add_argument("dataset", help="mnist, omniglot, digits or omniglot-mini")
    _add_config_args(p)
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("train", help="train a run of any objective (VAE, VAE-AS, ...); resumes from its checkpoint")
    p.add_argument("--run", default=None, help="a run of the grid, EXPERIMENT.RUN (e.g. table2.a1_b0p5)")
    p.add_argument("--dataset", default=None, help="mnist, omniglot, digits or omniglot-mini (ad-hoc run instead of --run)")
    p.add_argument("--objective", default=objectives.DEFAULT,
                   help="; ".join(f"{o.name}: {o.summary}" for o in objectives.REGISTRY.values()))
    p.add_argument("--param", dest="hyper", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyper-parameter of the objective, e.g. --param alpha=0.5 --param beta=2 (defaults: "
                        + "; ".join(f"{o.name}: {', '.join(f'{k}={v:g}' for k, v in o.as_dict(o.params()).items()) or 'none'}"
                                    for o in objectives.REGISTRY.values()) + ")")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default=None, help="a run's config.json written by 'vaeas resolve' (the pipeline's way)")
    p.add_argument("--out", default=None, help="model file to write (default with --config: model.pt beside it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--progress", choices=("bar", "lines", "none"), default=None,
                   help="bar: tqdm (default); lines: a line per twentieth of the run with loss, pace and time "
                        "left, for a log file (the pipeline's jobs); none: as --quiet")
    _add_config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resolve", help="write every run's resolved config.json (only those that changed)")
    p.add_argument("--dvc-yaml", default=None, metavar="PATH", help="first check that PATH (dvc.yaml) describes this profile")
    _add_config_args(p)
    p.set_defaults(func=cmd_resolve)

    p = sub.add_parser("evaluate", help="every Table 2 column of a trained model -> JSON")
    _add_model_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("mc-estimate", help="Monte Carlo MI and MD for each S of evaluation.mc_sizes -> CSV")
    _add_model_args(p)
    p.set_defaults(func=cmd_mc_estimate)

    p = sub.add_parser("seeds", help="an experiment's per-seed results, every metric and its provenance -> results/<profile>/seeds/EXPERIMENT.csv")
    p.add_argument("experiment", help="an experiment with runs: table1, table2, table3, fig2, baselines_mnist, baselines_omniglot or scaling")
    p.add_argument("--carry-over", action="store_true",
                   help="keep the existing file's row of a run whose metrics.json is absent, if made with the run's "
                        "current configuration (config_digest); for studies accumulated across machines")
    p.add_argument("--allow-missing", action="store_true",
                   help="with --carry-over: leave out (and name) a run that has neither; a partial study")
    _add_config_args(p)
    p.set_defaults(func=cmd_seeds)

    p = sub.add_parser("baselines", help="Table B (beyond the paper): VAE-AS(1, beta) paired with beta-VAE(beta), free bits, "
                                         "KL annealing -> results/<profile>/tables/EXPERIMENT.{csv,md,json}, _paired.csv, figures/EXPERIMENT.png")
    p.add_argument("experiment", help="baselines_mnist or baselines_omniglot")
    _add_config_args(p)
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("scaling", help="the N-scaling study (beyond the paper): each method against N, paired by seed -> "
                                       "results/<profile>/tables/scaling.{csv,md,json}, scaling_paired.csv, scaling_pooled.csv, figures/scaling.png")
    _add_config_args(p)
    p.set_defaults(func=cmd_scaling)

    p = sub.add_parser("table", help="Table 1, 2 or 3: ours beside the paper's -> CSV + Markdown")
    p.add_argument("table", type=int, choices=(1, 2, 3))
    _add_config_args(p)
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("figure", help="a figure: fig2, fig3, fig4, fig5, table1, table2, table3 -> PNG")
    p.add_argument("name")
    _add_config_args(p)
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("claims", help="machine-checked claims of the paper's §5 -> claims.md")
    _add_config_args(p)
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("report", help="REPORT.md with every table, figure, claim and the provenance")
    _add_config_args(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("verify", help="retrain committed cells in a scratch directory and compare with the committed "
                                      "per-seed numbers (bitwise / within seed noise / differs)")
    p.add_argument("--runs", nargs="+", default=[], metavar="EXPERIMENT.RUN", help="cells to rerun, e.g. table2.a1_b1")
    p.add_argument("--seeds", nargs="+", type=int, default=[], help="seeds of those runs (default: every committed seed)")
    p.add_argument("--sample", type=int, default=0, metavar="K", help="or: a seeded random sample of K committed cells")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--scratch", default=None, help="where to train (default: a new temporary directory; never runs/)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the committed row's)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=None, help="also write the comparison as CSV")
    p.add_argument("--quiet", action="store_true")
    _add_config_args(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("dvc-yaml", help="generate dvc.yaml for a profile from params.yaml")
    p.add_argument("--out", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="fail if the file is not current")
    _add_config_args(p)
    p.set_defaults(func=cmd_dvc_yaml)

    p = sub.add_parser("check", help="validate params.yaml and the experiment grid of every profile (no compute)")
    _add_config_args(p)
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except VaeasError as exc:
        print(f"vaeas: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"vaeas: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vaeas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
