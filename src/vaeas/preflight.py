"""What a Snakemake run must put on disk before its first job: decided when the Snakefile is
read, done only by a real run once Snakemake holds its lock.

Reading the Snakefile used to write: every run's config.json, stale models renamed aside,
damaged processed files rebuilt. So ``snakemake -n`` acted (a previewed edit, reverted, left 11
finished models set aside), and a second snakemake started during a run rewrote the files the
first one's jobs were reading (issue 21). Now :func:`plan` only reads; it resolves

* every config.json of the profile, in memory (:func:`vaeas.contract.run_configs`): the rules'
  ``params`` come from these texts, so a dry run after an edit lists exactly the jobs a real run
  will, before any file is rewritten;
* the finished models trained with another configuration (:func:`vaeas.finished.stale_models`):
  the Snakefile forces their jobs, so the preview lists them too;
* the processed files that are damaged, touched or unstamped (found by reading them).

:meth:`Plan.apply` does the writing, from the Snakefile's ``onstart`` handler: Snakemake calls
it in real runs only (never with ``-n``), after the DAG is built and its lock is taken, before
the first job. A second snakemake whose outputs overlap a running one's is refused the lock
before ``onstart``, so it changes nothing. Snakemake skips ``onstart`` when it has no job to
run, so while :meth:`Plan.pending` the Snakefile adds one small job, ``preflight``, to its
default target: an edit that changes a config.json but no model or metric (an inert key) is
still written, and the preview says so.

One thing a real run still does while the Snakefile is read (:meth:`Plan.create_missing`): it
creates the files that are *missing* — a config.json, or a processed file with its recorded
sha256 — byte for byte as they will be, because Snakemake decides what to run from what exists
when it builds the DAG: a missing input would reschedule every job after it (a missing processed
file, every training). Creating a missing file changes no file that anything reads; a dry run
creates nothing and says what a real run will create (:meth:`Plan.notes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import contract
from . import finished
from .config import Config
from .errors import VaeasError


@dataclass
class Plan:
    """What a run of ``cfg`` must do before its first job (see the module's docstring)."""

    cfg: Config
    #: config.json path -> its text, every one of the profile (the rules' params read these)
    configs: dict[str, str]
    #: model path -> the first key at which it differs from its run's configuration
    stale: dict[str, str]
    #: data set -> why its processed file must be rebuilt ('is missing', 'is damaged (...)', ...)
    repairs: dict[str, str] = field(default_factory=dict)
    #: data sets whose processed file is sound but has no (current) stamp: stamped by apply()
    restamp: list[str] = field(default_factory=list)

    def content(self, path: str) -> dict:
        """A config.json's content as the run will have it (parsed from :attr:`configs`)."""
        return json.loads(self.configs[path])

    def missing_configs(self) -> list[str]:
        return [p for p in self.configs if not Path(p).is_file()]

    def changed_configs(self) -> list[str]:
        """config.json files that exist with other content: rewritten by :meth:`apply`."""
        out = []
        for path, text in self.configs.items():
            try:
                if Path(path).read_text(encoding="utf-8") != text:
                    out.append(path)
            except FileNotFoundError:
                pass
            except (OSError, UnicodeDecodeError):
                out.append(path)
        return out

    def pending(self) -> bool:
        """Whether :meth:`apply` has anything to write that matters (a new stamp for a processed
        file whose bytes are unchanged waits for the next run with a job: it only saves a rehash)."""
        return bool(self.stale or self.repairs or self.changed_configs())

    def needs_a_job(self) -> bool:
        """Whether a pending write would find no job to run before it (so no ``onstart``): a
        damaged processed file, or config.json files that change only in what no job's params
        read (inert keys, the record of overrides, the profile's whole file). A change of a run's
        run/train/evaluate groups changes its jobs' params, and a stale model forces its job."""
        if self.repairs:
            return True
        changed = self.changed_configs()
        if not changed or self.stale:
            return False
        for path in changed:
            try:
                old = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return True
            if old.get("format") == contract.FORMAT and (
                    contract.part(old, contract.EVALUATE_KEYS) != contract.part(self.content(path), contract.EVALUATE_KEYS)):
                return False
        return True

    def notes(self, dry_run: bool) -> list[str]:
        """One line per thing a real run does before its jobs (printed by the Snakefile)."""
        will = "a real run will" if dry_run else "this run will"
        # A real run says it when it sets the model aside (finished.set_aside), under the lock.
        lines = [f"vaeas: {m} was trained with another configuration ({why}); a real run sets it aside "
                 f"as {m}{finished.STALE} and trains it again" for m, why in self.stale.items()] if dry_run else []
        for ds, why in self.repairs.items():
            path = _processed(self.cfg, ds)
            if why == "is missing" and dry_run:
                lines.append(f"vaeas: {path} is missing; a real run rebuilds it byte for byte (its recorded "
                             f"sha256) before it schedules any job, so the jobs listed after it here will not run")
            elif why != "is missing":
                lines.append(f"vaeas: {path} {why}; {will} rebuild it byte for byte before any job")
        missing = self.missing_configs()
        if missing and dry_run:
            lines.append(f"vaeas: {len(missing)} run configuration(s) missing (e.g. {missing[0]}); a real run "
                         f"writes them before it schedules any job")
        return lines

    def create_missing(self) -> list[str]:
        """Create the missing config.json files and rebuild missing processed files (a real run,
        while the Snakefile is read; see the module's docstring). Returns one line per file
        rebuilt (the config.json files are written silently, as `vaeas resolve` writes them)."""
        for path in self.missing_configs():
            contract.write_if_changed(path, self.configs[path])
        lines = []
        for ds in [d for d, why in self.repairs.items() if why == "is missing"]:
            lines.extend(self._repair(ds))
            del self.repairs[ds]
        return lines

    def apply(self) -> list[str]:
        """Everything else, under Snakemake's lock before the first job: rewrite the config.json
        files whose content changed, set the stale models aside, rebuild damaged processed files
        and stamp unstamped ones. Returns one line per model set aside and per file rebuilt."""
        from .data.processing import write_stamp

        lines = []
        contract.write_run_configs(self.cfg, texts=self.configs)
        for model, why in self.stale.items():
            if Path(model).is_file():
                lines.append(finished.set_aside(model, why))
        self.stale = {}                  # the DAG, which forced their jobs, is built by now
        for ds in list(self.repairs):
            lines.extend(self._repair(ds))
            del self.repairs[ds]
        for ds in self.restamp:
            write_stamp(_processed(self.cfg, ds))
        self.restamp.clear()
        return lines

    def _repair(self, dataset: str) -> list[str]:
        from .data import process

        path = _processed(self.cfg, dataset)
        try:
            process(dataset, self.cfg.data)
        except VaeasError as exc:        # e.g. raw files not fetched: the pipeline's jobs will say so
            path.unlink(missing_ok=True)
            return [f"vaeas: cannot rebuild {path} now ({exc})"]
        return [f"vaeas: {path} {self.repairs.get(dataset, 'was rebuilt')}: rebuilt byte for byte"]


def _processed(cfg: Config, dataset: str) -> Path:
    from .data import processed_path

    return processed_path(dataset, cfg.data.root)


def processed_state(dataset: str, cfg: Config) -> tuple[str | None, bool]:
    """(why the processed file must be rebuilt, or None; whether it needs a new stamp), by
    reading only. A file never built (no file, no stamp) is the pipeline's ``process`` job's."""
    from .data.processing import stamp_path
    from .data.store import read_processed
    from .io import sha256_file

    path = _processed(cfg, dataset)
    stamp = stamp_path(path)
    if stamp.is_file():
        if not path.is_file():
            return "is missing", False
        try:
            rec = json.loads(stamp.read_text())
            st = path.stat()
        except (OSError, ValueError):
            rec, st = {}, path.stat()
        if (st.st_size, st.st_mtime_ns) == (rec.get("size"), rec.get("mtime_ns")):
            return None, False
        if sha256_file(path) == rec.get("sha256"):
            return None, True                               # touched, same bytes
        return "does not match its recorded sha256", False
    if not path.is_file():
        return None, False
    try:
        read_processed(path, dataset)
    except VaeasError as exc:
        return f"is damaged ({exc})", False
    return None, True


def plan(cfg: Config, datasets: list[str], check_finished: bool = True) -> Plan:
    """What a run of ``cfg`` (using ``datasets``) must do before its first job. Reads only.
    ``check_finished=False`` (a job's own process, which only needs the configs) skips the
    models and the processed files."""
    configs = contract.run_configs(cfg)
    if not check_finished:
        return Plan(cfg, configs, {})
    stale = finished.stale_models(cfg, configs)
    out = Plan(cfg, configs, stale)
    for ds in datasets:
        why, restamp = processed_state(ds, cfg)
        if why:
            out.repairs[ds] = why
        elif restamp:
            out.restamp.append(ds)
    return out

