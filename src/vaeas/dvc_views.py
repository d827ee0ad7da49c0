"""What DVC shows of a profile: its training-curve plots and whether its results are cached
(issue 21, item 4; D45). Used by :func:`vaeas.pipeline.dvc_yaml`."""

from __future__ import annotations

from pathlib import Path

from . import objectives
from . import experiments as exps
from .config import Config


def results_in_git(profile: str, root: str | Path = ".") -> bool:
    """Whether git keeps ``results/<profile>/``, read from the project's .gitignore: ``/results/*/``
    ignores every profile's results but those re-included by ``!/results/<profile>/`` (the
    repository keeps demo's and mnist-cpu's); without such a rule git keeps them all."""
    try:
        lines = [ln.strip() for ln in (Path(root) / ".gitignore").read_text().splitlines()]
    except OSError:
        return True
    if not {"/results/*/", "/results/*", "results/*/", "results/*", "/results/", "results/"} & set(lines):
        return True
    return bool({f"!/results/{profile}/", f"!/results/{profile}", f"!results/{profile}/"} & set(lines))


def curve_columns(cfg: Config, run: exps.Run) -> list[str]:
    """The columns of a run's model.log.csv that `dvc plots show` draws against the epoch: the
    ones its objective declares (the loss and its terms; the softmax MI / MD / SC of VAE-AS), and
    the Monte Carlo monitor when on and the objective has a classifier."""
    definition = objectives.get(run.objective)
    cols = list(definition.curves)
    if definition.needs_classifier and exps.config_for(cfg, run).training.monitor_every:
        cols += ["mon_mi_mc", "mon_md_mc"]
    return cols


def curve_plots(cfg: Config, logs: list[tuple[exps.Run, str]]) -> list[dict]:
    """dvc.yaml's top-level ``plots``: one plot per experiment and quantity (``table2: kl``), a
    line per run and seed, so that every plot has one scale (a loss of ~100 and an MI of ~0.01 on
    one axis left the MI flat). ``logs``: each trained run with its model.log.csv."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for run, log in logs:
        for col in curve_columns(cfg, run):
            out.setdefault((run.experiment, col), {})[log] = col
    return [{f"{experiment}: {col}": {"x": "epoch", "y": files, "title": f"{experiment}: {CURVE_NAMES.get(col, col)}",
                                      "x_label": "epoch", "y_label": CURVE_NAMES.get(col, col)}}
            for (experiment, col), files in out.items()]


#: what a model.log.csv column is, for the plots' titles and axes
CURVE_NAMES = {"loss": "loss (nats, training batch mean)", "recon": "reconstruction (nats)", "kl": "KL(q(z|x) || p(z)) (nats)",
               "mi": "MI, softmax (nats)", "md": "marginal KL, softmax (nats)", "sc": "classifier cross-entropy SC (nats)",
               "mon_mi_mc": "MI, Monte Carlo (nats)", "mon_md_mc": "marginal KL, Monte Carlo (nats)"}


