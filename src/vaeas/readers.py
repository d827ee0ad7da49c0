"""The files one stage writes for another, checked before any stage reads them (issue 21).

A stage's inputs that another stage wrote — a run's ``metrics.json``, ``mc.csv`` and
``model.log.csv``, an experiment's per-seed CSV, a table's CSV and JSON, the claims' Markdown, a
figure's PNG — are read by :func:`problem`, which says in one line what is wrong with a file
(unreadable, not UTF-8, not valid JSON, no header, a column or key it must have, a value that
is not a number) and what to do about it, or returns ``None`` (also for a missing file, which is
the DAG's business, and :func:`require`'s). The rules are the least a stage
relies on, so a file an older version of the pipeline wrote still passes.

Two callers: every ``vaeas`` command that reads such files checks them first
(:func:`require`), so ``dvc repro`` and a user's own command stop with ``vaeas: error: <file>:
<what>; <remedy>`` instead of a traceback; and the reading rules of the Snakefile check their
inputs while the DAG is built (``checked`` in workflow/rules/common.smk, through
:func:`damaged`). That second check is what keeps finished outputs: Snakemake removes a job's
outputs before the job runs, so a table job started on a corrupt metrics.json would have deleted
the finished table before failing, and the next run, finding nothing newer than the failed job's
inputs, said "Nothing to be done" beside a stale report.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import VaeasError

#: keys every metrics.json has had since Table 2 existed (a stage reads at least these)
METRICS_KEYS = ("nll_test", "kl_test", "au")
#: columns a CSV must have, by file name (``seeds``: any CSV under a seeds/ folder)
CSV_COLUMNS = {
    "model.log.csv": ("epoch", "loss", "seconds"),
    "mc.csv": ("size", "repeat", "mi", "md"),
    "seeds": ("run_id", "experiment", "run", "seed"),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the kinds of file checked (anything else a job reads, a model or a processed data file, has
#: its own check where it is loaded)
SUFFIXES = (".json", ".csv", ".md", ".png")

#: what to do, by the kind of file (``{path}``: the file); every one is an output some job rebuilds.
#: Deleting the file is not enough for Snakemake: a missing file whose readers' outputs are up to
#: date is not rebuilt ("no update"), so the remedy names the file to --forcerun.
REMEDY = {
    "metrics.json": "rebuild it: snakemake --forcerun {path} (its model is evaluated again, nothing is retrained), or dvc repro",
    "mc.csv": "rebuild it: snakemake --forcerun {path} (its model's Monte Carlo estimates are computed again), or dvc repro",
    "model.log.csv": "it is written with its model: restore both (git/dvc checkout), or retrain that model: "
                     "snakemake --forcerun {path}, or dvc repro",
    "results": "rebuild it: snakemake --forcerun {path}, or dvc repro",
}


def _kind(path: Path) -> str:
    if path.name in ("metrics.json", "mc.csv", "model.log.csv"):
        return path.name
    return "results"


def _csv_columns(path: Path) -> tuple[str, ...]:
    if path.name in CSV_COLUMNS:
        return CSV_COLUMNS[path.name]
    if path.parent.name == "seeds":
        return CSV_COLUMNS["seeds"]
    return ()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_problem(text: str, path: Path) -> str | None:
    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    if path.name == "metrics.json":
        if not isinstance(content, dict):
            return f"holds a JSON {type(content).__name__}, not an object of metrics"
        missing = [k for k in METRICS_KEYS if k not in content]
        if missing:
            return f"has no key {missing[0]!r}"
        bad = [k for k in METRICS_KEYS if not _is_number(content[k])]
        if bad:
            return f"key {bad[0]!r} is {content[bad[0]]!r}, not a number"
    return None


def _csv_problem(path: Path) -> str | None:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return "is empty (no header)"
    except (pd.errors.ParserError, ValueError) as exc:
        return f"is not a readable CSV ({' '.join(str(exc).split())})"
    columns = _csv_columns(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        return f"has no column {missing[0]!r}"
    if columns and frame.empty:
        return "has a header but no rows"
    numeric = [c for c in columns if c not in ("run_id", "experiment", "run")]
    for col in numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            return f"column {col!r} holds {frame[col][bad].iloc[0]!r}, not a number"
    return None


def problem(path: str | Path) -> str | None:
    """What is wrong with a stage's input file, in one line with its remedy, or ``None``."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        return None            # a model or a data file: checked by its own loader
    remedy = REMEDY[_kind(path)].format(path=path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None            # a missing input is the DAG's business (or require's)
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc}); check its owner and mode"
    what = None
    if path.suffix == ".png":
        what = None if data.startswith(PNG_SIGNATURE) else "is not a PNG image"
    elif path.suffix in (".json", ".csv", ".md"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            what = f"is not UTF-8 text (byte {exc.start})"
        else:
            if path.suffix == ".json":
                what = _json_problem(text, path)
            elif path.suffix == ".csv":
                what = _csv_problem(path)
    return None if what is None else f"{path}: {what}; {remedy}"


def damaged(paths) -> list[str]:
    """:func:`problem` of each path that exists, for those that have one (in the given order)."""
    return [m for m in map(problem, dict.fromkeys(str(p) for p in paths)) if m]


def refuse(found: list[str]) -> None:
    """Raise the first of :func:`damaged`'s lines (with how many more), if there is one."""
    if found:
        more = f" ({len(found) - 1} more damaged input{'s' if len(found) > 2 else ''} after it)" if len(found) > 1 else ""
        raise VaeasError(found[0] + more)


def require(paths) -> None:
    """Every path exists and passes :func:`problem`; else a :class:`VaeasError` naming the first
    that does not (and how many more)."""
    paths = [str(p) for p in paths]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise VaeasError(f"missing input {missing[0]} ({len(missing)} missing); run the pipeline (snakemake or dvc repro) first")
    refuse(damaged(paths))


__all__ = ["problem", "damaged", "refuse", "require", "METRICS_KEYS", "CSV_COLUMNS", "REMEDY"]
