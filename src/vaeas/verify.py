"""``vaeas verify``: retrain committed cells in a scratch directory and compare them with the
committed per-seed numbers (issue 20, item 3).

A cell is one run of the grid at one seed, as a row of ``results/<profile>/seeds/<experiment>.csv``
records it. Each cell is trained and evaluated afresh under ``--scratch`` (never under runs/), with
the committed row's thread count, and compared metric by metric with the committed value:

* **bitwise** — every metric equal to the committed one exactly. Expected only on the same CPU
  model, torch version and thread count (float32 training is chaotic; D41, docs/reliability.md).
* **within seed noise** — every metric inside the 95 % prediction interval of one new draw from
  the run's committed seeds: |rerun − seeds' mean| ≤ t · sd · √(1 + 1/n), with n the committed
  seeds, sd their sample sd (floored at :data:`FLOOR`: one unit for a count, 0.01 nats otherwise,
  so that seeds which agree exactly do not demand bitwise agreement on another CPU) and t Student's
  quantile with n − 1 degrees of freedom at 1 − α/(2m), α = :data:`ALPHA` shared by the cell's m
  metrics (Bonferroni). Exact for normal per-seed values: a rerun drawn from the same distribution
  is called *differs* with probability ≤ 5 % whatever n (D49). A rerun on another machine is
  another draw of the seed distribution (its same-seed value carries no information there), so
  this is the most one can ask there — and with 3 seeds it asks little: t · √(1 + 1/n) is 16.3 sd
  for 10 metrics, printed beside each cell.
* **one seed** — not bitwise, and the run has one committed seed: no spread to judge by.
* **differs** — some metric beyond that; ``vaeas verify`` then exits with status 2, naming the cells.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import cpu_model
from . import experiments as exps
from . import readers
from .config import Config, with_overrides
from .errors import VaeasError

#: The metrics compared: Tables 2–3's columns and the Monte Carlo MI, where the row has them.
METRICS = ("nll_test", "kl_test", "au", "nll_train", "kl_train", "mi", "md", "sc", "mi_mc", "best_nll_test")
#: "Within seed noise": the cell's false-alarm probability (shared by its metrics), and the floor
#: of a seed sd.
ALPHA = 0.05
FLOOR = {"au": 1.0}
DEFAULT_FLOOR = 0.01

BITWISE, NOISE, DIFFERS, ONE_SEED = "bitwise", "within seed noise", "differs", "one seed"


def bound(n: int, metrics: int, alpha: float = ALPHA) -> float:
    """The half-width, in seed sds, of the family-wise (1 − ``alpha``) prediction interval of one new
    draw around the mean of ``n`` seeds, for each of ``metrics`` metrics: t_{n−1}(1 − α/2m) · √(1 + 1/n)."""
    from scipy.stats import t

    if n < 2 or metrics < 1:
        raise ValueError(f"bound: needs n ≥ 2 seeds and ≥ 1 metric, got n={n}, metrics={metrics}")
    return float(t.ppf(1 - alpha / (2 * metrics), n - 1)) * math.sqrt(1 + 1 / n)


@dataclass(frozen=True)
class Cell:
    """One committed (run, seed) to rerun: the run that trains the model and its committed row."""

    run: exps.Run
    seed: int
    row: Mapping
    sd: Mapping[str, float]
    mean: Mapping[str, float] | None = None
    n: Mapping[str, int] | None = None

    @property
    def id(self) -> str:
        return f"{self.run.id}.seed{self.seed}"


def committed_rows(cfg: Config) -> pd.DataFrame:
    """Every committed per-seed row of the profile (results/<profile>/seeds/*.csv)."""
    from .pipeline import experiments_with_runs, seeds_path

    paths = [seeds_path(cfg, e) for e in experiments_with_runs(cfg) if Path(seeds_path(cfg, e)).is_file()]
    readers.refuse(readers.damaged(paths))
    frames = [pd.read_csv(p, dtype={"run": str, "trained_as": str, "cpu": str}) for p in paths]
    if not frames:
        raise VaeasError(f"no committed per-seed results under results/{cfg.profile}/seeds/; nothing to verify")
    return pd.concat(frames, ignore_index=True)


def select(cfg: Config, rows: pd.DataFrame, run_ids: Sequence[str] = (), seeds: Sequence[int] = (),
           sample: int = 0, sample_seed: int = 0) -> list[Cell]:
    """The cells named by ``run_ids`` (``table2.a1_b1``; a run sharing another's model is that
    model) at ``seeds`` (default: every committed seed), or a seeded random ``sample`` of the
    committed cells that train a model of their own. Names are checked before anything runs."""
    own = rows[rows["trained_as"].fillna("") == ""].set_index("run_id")
    if run_ids:
        wanted = []
        for rid in run_ids:
            run = exps.resolve(cfg, rid)
            owner = exps.resolve(cfg, run.same_as) if run.same_as else run
            for seed in (seeds or exps.seeds(cfg)):
                wanted.append((owner, int(seed)))
    else:
        if sample <= 0:
            raise VaeasError("give --runs EXPERIMENT.RUN ... or --sample K")
        pool = [(run, s) for run in exps.distinct(exps.runs(cfg)) for s in exps.seeds(cfg)
                if f"{run.id}.seed{s}" in own.index]
        if not pool:
            raise VaeasError(f"no committed cell of profile '{cfg.profile}' to sample from")
        wanted = random.Random(sample_seed).sample(pool, min(sample, len(pool)))
    cells, seen = [], set()
    for run, seed in wanted:
        cid = f"{run.id}.seed{seed}"
        if cid in seen:
            continue
        seen.add(cid)
        if cid not in own.index:
            raise VaeasError(f"cell {cid} has no committed row in results/{cfg.profile}/seeds/{run.experiment}.csv")
        runs_rows = own[own["experiment"].eq(run.experiment) & own["run"].astype(str).eq(run.name)]
        values = {m: pd.to_numeric(runs_rows[m], errors="coerce").dropna() for m in METRICS if m in runs_rows}
        cells.append(Cell(run, seed, own.loc[cid].to_dict(), {m: float(v.std(ddof=1)) for m, v in values.items()},
                          {m: float(v.mean()) for m, v in values.items()}, {m: len(v) for m, v in values.items()}))
    return cells


def expected_seconds(cells: Sequence[Cell]) -> float:
    """The committed wall seconds of training and evaluating the cells (on their machine)."""
    return float(sum(_num(c.row.get("train_seconds")) + _num(c.row.get("eval_seconds")) for c in cells
                     if math.isfinite(_num(c.row.get("train_seconds")))))


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def rerun(cfg: Config, cell: Cell, scratch: str | Path, data_root: str | None = None, threads: int | None = None,
          progress: bool = True) -> dict:
    """Train and evaluate one cell under ``scratch``; its metrics dict. Threads: ``threads``, else
    the committed row's, else the config's."""
    import torch

    from .evaluation import evaluate, load_for_eval
    from .training import train

    conf = exps.config_for(cfg, cell.run)
    if data_root:
        conf = with_overrides(conf, {"data.root": str(data_root)}, source="vaeas verify --data-root", grid=False)
    n = threads or (int(_num(cell.row.get("threads"))) if math.isfinite(_num(cell.row.get("threads"))) else 0)
    if n:
        conf = with_overrides(conf, {"training.threads": n}, source="vaeas verify", grid=False)
        torch.set_num_threads(n)
    out = Path(scratch) / cell.run.experiment / cell.run.name / f"seed{cell.seed}" / exps.MODEL_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    train(conf, cell.run.spec(cell.seed), out, progress=progress)
    model, meta = load_for_eval(str(out), conf.training.device)
    return evaluate(model, meta, data_root, progress=progress)


def compare(cell: Cell, new: Mapping) -> tuple[list[dict], str]:
    """Per metric: committed, rerun, difference, the seeds' mean and sd, the rerun's distance from
    that mean in seed sds (z) and the :func:`bound` it must stay within; the cell's verdict."""
    pairs = [(m, _num(cell.row.get(m)), _num(new.get(m))) for m in METRICS]
    pairs = [(m, old, now) for m, old, now in pairs if math.isfinite(old) and math.isfinite(now)]
    if not pairs:
        return [], DIFFERS
    means, counts = cell.mean or {}, cell.n or {}
    out, equal, inside, judged = [], True, True, True
    for m, old, now in pairs:
        n = int(counts.get(m, 0))
        sd = cell.sd.get(m, math.nan)
        mean = means.get(m, math.nan)
        if n >= 2 and math.isfinite(mean):
            scale = max(sd if math.isfinite(sd) else 0.0, FLOOR.get(m, DEFAULT_FLOOR))
            z, limit = (now - mean) / scale, bound(n, len(pairs))
            inside &= abs(z) <= limit
        else:
            z = limit = math.nan
            judged = False
        equal &= now == old
        out.append({"cell": cell.id, "metric": m, "committed": old, "rerun": now, "difference": now - old,
                    "seeds": n, "seed mean": mean, "seed sd": sd, "z": z, "bound": limit})
    if equal:
        return out, BITWISE
    if not judged:
        return out, ONE_SEED
    return out, NOISE if inside else DIFFERS


def verify(cfg: Config, cells: Sequence[Cell], scratch: str | Path, data_root: str | None = None,
           threads: int | None = None, progress: bool = True, say=print) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rerun and compare every cell; the per-metric table and the verdict per cell."""
    from tqdm import tqdm

    machine = {"cpu": cpu_model()}
    expected = expected_seconds(cells)
    cpus = sorted({str(c.row.get("cpu")) for c in cells})
    say(f"vaeas verify: {len(cells)} cell(s) ({', '.join(c.id for c in cells)}); the committed runs took "
        f"{expected / 60:.1f} min of one job each on {', '.join(cpus)}; this machine: {machine['cpu']}")
    rows, verdicts = [], {}
    bar = tqdm(cells, desc="verify", unit="cell", disable=not progress)
    for cell in bar:
        bar.set_postfix_str(cell.id)
        start = time.perf_counter()
        table, verdict = compare(cell, rerun(cfg, cell, scratch, data_root, threads, progress=False))
        same = (str(cell.row.get("cpu")) == machine["cpu"])
        verdicts[cell.id] = verdict
        rows += [{**r, "verdict": verdict, "same CPU model": same, "seconds": round(time.perf_counter() - start, 1)}
                 for r in table]
    return pd.DataFrame(rows), verdicts


def format_verify(table: pd.DataFrame, verdicts: Mapping[str, str]) -> str:
    from tabulate import tabulate

    if table.empty:
        return "no metrics to compare"
    cols = ["cell", "metric", "committed", "rerun", "difference", "seeds", "seed mean", "seed sd", "z", "bound"]
    shown = table.assign(**{c: table[c].map(lambda x: f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else "—")
                            for c in ("committed", "rerun", "difference", "seed mean", "seed sd", "z", "bound")})
    text = tabulate(shown[cols].values.tolist(), headers=cols, tablefmt="github", disable_numparse=True)
    lines = [f"{cid}: {v}" for cid, v in verdicts.items()]
    note = ("z: (rerun − seed mean) / seed sd, the sd floored at 1 for AU and 0.01 otherwise; within seed noise: "
            f"every |z| ≤ bound = t_(n−1)(1 − {ALPHA:g}/2m) · √(1 + 1/n) over the cell's m metrics "
            f"(a rerun from the committed seeds' distribution reads 'differs' with probability ≤ {ALPHA:.0%}).")
    return text + "\n\n" + note + "\n" + "\n".join(lines)


def main(cfg: Config, args) -> None:
    """``vaeas verify``: select the cells, rerun them, print the comparison (and write ``--out``);
    a VaeasError (exit status 2) naming the cells that differ."""
    import tempfile

    cells = select(cfg, committed_rows(cfg), args.runs, args.seeds, args.sample, args.sample_seed)
    scratch = args.scratch or tempfile.mkdtemp(prefix="vaeas-verify-")
    if Path(scratch).resolve().is_relative_to(Path("runs").resolve()):
        raise VaeasError(f"--scratch {scratch} lies under runs/: verify never writes there")
    table, verdicts = verify(cfg, cells, scratch, args.data_root, args.threads, progress=not args.quiet)
    print(format_verify(table, verdicts))
    if args.out:
        from .io import atomic_path

        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index=False)
    bad = [c for c, v in verdicts.items() if v == DIFFERS]
    if bad:
        raise VaeasError(f"{len(bad)} of {len(verdicts)} cell(s) differ from the committed numbers beyond seed noise: "
                         + ", ".join(bad))
