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
