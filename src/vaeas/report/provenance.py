"""Provenance (versions, machine, git, stage times) and REPORT.md."""

from __future__ import annotations

import math
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


from .. import cpu_model, gpu_driver_present, package_versions
from ..io import sha256_file, write_text
from .tables import _num


# ---------------------------------------------------------------------------------------------
# Provenance and the report

def stage_times_from_seeds(rows: Sequence[Mapping]) -> dict[str, float]:
    """Wall time (s) per model from per-seed rows (results/<profile>/seeds/*.csv): ``train: <run_id>``
    from ``train_seconds`` and ``evaluate: <run_id>`` from ``eval_seconds``, once per trained model
    (a row that shares another run's model, ``trained_as``, is that model), and the totals."""
    times: dict[str, float] = {}
    for row in rows:
        if row.get("trained_as"):
            continue
        for stage, key in (("train", "train_seconds"), ("evaluate", "eval_seconds")):
            if math.isfinite(_num(row.get(key))):
                times[f"{stage}: {row['run_id']}"] = float(row[key])
    for stage in ("train", "evaluate"):
        parts = [v for k, v in times.items() if k.startswith(f"{stage}: ")]
        if parts:
            times[f"{stage} (total)"] = float(sum(parts))
    return times


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def provenance(params_path: str | os.PathLike, stage_times: Mapping[str, float], profile: str | None = None) -> dict:
    """What produced the report: git commit and dirty flag (of the repository holding
    ``params_path``), sha256 of params.yaml, the profile (``profile`` or the file's ``profile``
    key), package versions (None if not installed), this machine's CPU / CUDA device, and
    ``stage_times`` (see :func:`stage_times_from_seeds`)."""
    params_path = Path(params_path)
    repo = params_path.resolve().parent
    commit = _git(["rev-parse", "HEAD"], repo)
    # The pipeline's own outputs (results/) are rewritten by the very run this report closes; only
    # changes elsewhere (code, params, docs) make the recorded commit not the code that ran.
    status = _git(["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
                  repo) if commit else None
    if profile is None and params_path.is_file():
        import yaml

        raw = yaml.safe_load(params_path.read_text()) or {}
        profile = raw.get("profile") if isinstance(raw, dict) else None
    packages = package_versions()
    cuda = None
    if gpu_driver_present():           # else no torch import: it costs the report job seconds
        try:
            import torch

            if torch.cuda.is_available():
                cuda = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001 - provenance must not fail on a broken CUDA setup
            cuda = None
    return {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "params_sha256": sha256_file(params_path) if params_path.is_file() else None,
        "params_path": str(params_path),
        "profile": profile,
        "python": platform.python_version(),
        "packages": packages,
        "device": {"cpu": cpu_model(), "cuda": cuda, "note": "the machine that wrote the report"},
        "stage_times_s": {k: round(float(v), 3) for k, v in stage_times.items()},
    }


def format_provenance(prov: Mapping) -> str:
    """Provenance as Markdown: a key/value table, package versions, and wall time per stage."""
    from tabulate import tabulate

    dev = prov.get("device", {}) or {}
    commit = prov.get("git_commit")
    rows = [["git commit", (f"`{commit}`" if commit else "unknown (not a git checkout)")
             + (" (dirty: uncommitted changes)" if prov.get("git_dirty") else "")],
            ["git dirty", str(prov.get("git_dirty"))],
            ["params.yaml sha256", f"`{prov.get('params_sha256')}`"],
            ["profile", str(prov.get("profile"))],
            ["python", str(prov.get("python"))],
            ["device (CPU)", str(dev.get("cpu"))],
            ["device (CUDA)", str(dev.get("cuda") or "none")]]
    rows += [[f"package {k}", str(v)] for k, v in (prov.get("packages") or {}).items()]
    out = tabulate(rows, headers=["Key", "Value"], tablefmt="github", disable_numparse=True)
    times = prov.get("stage_times_s") or {}
    if times:
        order = sorted(times, key=lambda k: (not k.endswith("(total)"), k))
        out += "\n\nWall time per stage (seconds):\n\n" + tabulate(
            [[k, f"{times[k]:.1f}"] for k in order], headers=["Stage", "Seconds"], tablefmt="github", disable_numparse=True)
    out += "\n\n<details><summary>provenance.json</summary>\n\n```json\n" + json.dumps(prov, indent=2, sort_keys=True) + "\n```\n\n</details>"
    return out


@dataclass
class Section:
    """One part of REPORT.md: a heading, Markdown ``body``, then ``files`` in order: ``.md`` files
    are embedded verbatim, images (``.png``, ``.svg``, ``.jpg``) linked relative to the report."""

    title: str
    body: str = ""
    files: Sequence[str | os.PathLike] = field(default_factory=tuple)


IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")


def write_report(path: str | os.PathLike, sections: Sequence[Section], provenance: Mapping, banner: str = "") -> None:
    """Write REPORT.md: the scope ``banner`` (:func:`vaeas.report.scope.scope_banner`: data sets,
    scale, profile), the sections in order, then the provenance. An embedded ``.md`` file that
    opens with the same banner (claims.md) is embedded without it. A missing file is an error."""
    from ..errors import VaeasError

    path = Path(path)
    base = path.resolve().parent
    parts = ["# VAE-AS reproduction report"] + ([banner] if banner else []) + [
        "Reproduction of *Improve Variational Autoencoder with Auxiliary Softmax Multiclassifier* (VAE-AS). "
        "Each table's caption says what its cells hold."]
    for section in sections:
        parts.append(f"## {section.title}")
        if section.body:
            parts.append(section.body.strip())
        for item in section.files:
            item = Path(item)
            if not item.is_file():
                raise VaeasError(f"report: {item} (section '{section.title}') not found")
            if item.suffix.lower() in IMAGE_SUFFIXES:
                rel = Path(os.path.relpath(item.resolve(), base)).as_posix()
                parts.append(f"![{section.title}: {item.name}]({rel})")
            else:
                text = item.read_text(encoding="utf-8").strip()
                parts.append(text.removeprefix(banner).strip() if banner else text)
    parts.append("## Provenance")
    parts.append(format_provenance(provenance))
    write_text(path, "\n\n".join(parts) + "\n")


def read_metrics(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """The metrics.json files as a list of dicts (each with ``path`` added)."""
    rows = []
    for p in paths:
        row = json.loads(Path(p).read_text())
        row["path"] = str(p)
        rows.append(row)
    return rows


__all__ = ["stage_times_from_seeds", "provenance", "format_provenance", "Section", "IMAGE_SUFFIXES",
           "write_report", "read_metrics"]
