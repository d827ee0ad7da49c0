"""Verification of raw files against known hashes, and the lock file that pins the rest."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from ..errors import VaeasError
from ..io import sha256_file, write_json
from .catalog import RawFile


@dataclass(frozen=True)
class VerifiedFile:
    """A raw file whose content passed verification, with what that says about its origin."""

    path: Path
    sha256: str
    official: bool
    note: str
    pin: dict | None = field(default=None, compare=False)   # a lock entry still to be written

    def record(self) -> dict:
        """The entry of ``meta["sources"]`` describing this file."""
        return {"file": self.path.name, "sha256": self.sha256, "official": self.official, "note": self.note}


class ChecksumMismatch(VaeasError):
    """A file whose content is not one of the accepted versions."""


class NotOnSource(VaeasError):
    """The source does not have the file (HTTP 404, or missing from a local mirror)."""


def _mismatch(name: str, kind: str, expected: str, actual: str) -> ChecksumMismatch:
    return ChecksumMismatch(f"checksum mismatch for {name}: expected {kind} {expected}, got {actual}; "
                            f"the file was not kept")


def md5_file(path: Path) -> str:
    """Hex md5 of a file (only to compare with the md5 torchvision publishes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock(lock_file: str | os.PathLike) -> dict:
    """The lock file's pins (``{}`` when the file does not exist yet)."""
    path = Path(lock_file)
    if not path.is_file():
        return {}
    try:
        lock = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise VaeasError(f"lock file {path} is not valid JSON (line {exc.lineno}); fix or delete it") from None
    if not isinstance(lock, dict):
        raise VaeasError(f"lock file {path} must hold a JSON object")
    return lock


def pin_in_lock(lock_file: str | os.PathLike, key: str, entry: dict) -> None:
    """Add one pin to the lock file (re-read first, written atomically, keys sorted)."""
    lock = read_lock(lock_file)
    lock[key] = entry
    write_json(lock_file, lock)


def verify(spec: RawFile, path: Path, lock: Mapping, source: str = "") -> VerifiedFile:
    """Check ``path`` against ``spec``; raise :class:`ChecksumMismatch` if it is not accepted.

    A file without a published sha256 and without a pin yet is accepted (after its md5, if
    published) and returned with the pin to write; ``source`` is the URL recorded in that pin.
    """
    sha = sha256_file(path)
    if spec.md5:
        md5 = md5_file(path)
        if md5 != spec.md5:
            raise _mismatch(spec.name, "md5", spec.md5, md5)
    if spec.known:
        for known in spec.known:
            if known.sha256 == sha:
                return VerifiedFile(path, sha, known.official, known.note)
        raise _mismatch(spec.name, "sha256", spec.expected_sha256, sha)
    pinned = lock.get(spec.key)
    if pinned:
        if pinned.get("sha256") != sha:
            raise _mismatch(spec.name, "sha256", pinned.get("sha256"), sha)
        return VerifiedFile(path, sha, True, f"matches its pin in the lock file (first fetched from {pinned.get('url')})")
    entry = {"sha256": sha, "url": source, "pinned_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if spec.md5:
        entry["md5"] = spec.md5
    return VerifiedFile(path, sha, True, f"pinned in the lock file on first fetch from {source}", pin=entry)


def _warn(message: str) -> None:
    print(f"vaeas: warning: {message}", file=sys.stderr)


def _warn_if_variant(found: VerifiedFile) -> None:
    if not found.official:
        _warn(f"{found.path.name} is a known non-official variant ({found.note}); "
              f"accepted and recorded in the processed file's meta")


def verified_present(spec: RawFile, folder: Path, lock: Mapping) -> VerifiedFile | None:
    """The file already in ``folder`` if it verifies; a file that does not is removed.

    A file with no pin to check against is removed too: the first pin is always taken from a
    fresh download, so the lock file records the URL the bytes came from.
    """
    path = folder / spec.name
    if not path.is_file():
        return None
    try:
        found = verify(spec, path, lock, source=str(path))
    except ChecksumMismatch as exc:
        _warn(f"{path} failed verification ({exc}); removed, fetching it again")
        path.unlink()
        return None
    if found.pin is not None:
        _warn(f"{path} has no pin in the lock file; removed, fetching it again to pin it")
        path.unlink()
        return None
    return found
