"""Progress of a long loop over epochs: a tqdm bar on a terminal, plain lines in a job's log.

A pipeline job's stderr goes to a log file, where tqdm's carriage returns make one unreadable
line; :class:`EpochLines` writes instead a line every ``1/lines`` of the run — epoch, loss, KL,
seconds per epoch, elapsed and the time left (from the mean pace of the epochs run so far in this
process, so a resumed run does not count the epochs it skipped). :func:`epoch_bar` picks one.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path
from typing import IO, Iterable, Iterator


def clock(seconds: float) -> str:
    """``3725`` -> ``'1h02m05s'``; ``65`` -> ``'1m05s'``; ``4.2`` -> ``'4s'``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class EpochLines:
    """Iterate ``epochs`` (a range of 0-based epochs, starting at ``initial``), writing one line to
    ``stream`` after every ``every``-th epoch of ``total`` and after the last: ``desc: epoch
    k/total, loss …, kl …, s/epoch, elapsed, left``. ``set_postfix`` takes the values of the epoch
    just run, as tqdm's does."""

    def __init__(self, epochs: Iterable[int], initial: int, total: int, desc: str,
                 lines: int = 20, stream: IO[str] | None = None):
        self.epochs, self.initial, self.total, self.desc = epochs, initial, total, desc
        self.every = max(1, math.ceil(total / max(1, lines)))
        self.stream = stream if stream is not None else sys.stderr
        self.postfix: dict[str, str] = {}

    def set_postfix(self, **values) -> None:
        self.postfix = {k: str(v) for k, v in values.items()}

    def __iter__(self) -> Iterator[int]:
        start = time.perf_counter()
        for epoch in self.epochs:
            yield epoch
            done = epoch + 1
            if done % self.every == 0 or done == self.total:
                elapsed = time.perf_counter() - start
                pace = elapsed / (done - self.initial)
                values = "".join(f", {k} {v}" for k, v in self.postfix.items())
                print(f"{self.desc}: epoch {done}/{self.total}{values}, {pace:.2f} s/epoch, "
                      f"elapsed {clock(elapsed)}, left {clock(pace * (self.total - done))}",
                      file=self.stream, flush=True)

    def close(self) -> None:
        pass


def epoch_bar(mode: bool | str, epochs: Iterable[int], initial: int, total: int, desc: str):
    """``True``: a tqdm bar; ``"lines"``: :class:`EpochLines`; ``False``: silent."""
    if mode == "lines":
        return EpochLines(epochs, initial, total, desc)
    from tqdm.auto import tqdm

    return tqdm(epochs, initial=initial, total=total, desc=desc, disable=not mode, unit="epoch")


def training_summary(desc: str, model: str | Path) -> str:
    """`` (mnist VAE seed 0: 600 epochs, loss 92.10, kl 13.90, 231 s of training)``, from the
    log beside the model (``model.log.csv``); blank when there is none. The line ``vaeas train``
    ends with, which the pipeline's train jobs echo into Snakemake's output."""
    model = Path(model)
    log = model.with_name(model.name.split(".")[0] + ".log.csv")
    try:
        with open(log, newline="") as fh:
            rows = list(csv.DictReader(fh))
        last, seconds = rows[-1], sum(float(r["seconds"]) for r in rows)
        return (f" ({desc}: {last['epoch']} epochs, loss {float(last['loss']):.2f}, "
                f"kl {float(last['kl']):.2f}, {seconds:.0f} s of training)")
    except (OSError, IndexError, KeyError, ValueError):
        return ""


__all__ = ["EpochLines", "epoch_bar", "clock", "training_summary"]
