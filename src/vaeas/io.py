"""Atomic file writes and hashing, shared by every module that writes an output.

Outputs are written to a temporary file in the destination's directory and renamed into place
only once complete, so an interrupted or failed command never leaves a half-written file under
the name a pipeline rule waits for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left untouched. An
    ``OSError`` about the temporary file (a full disk, a write refused) is re-raised naming
    ``path``, the file the user asked for, not the temporary name that no longer exists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs should read like any file
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.filename in (None, str(tmp_path)) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc   # keeps the subclass
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (stable bytes for stable input)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def payload_sha256(obj) -> str:
    """sha256 of a nested payload (dicts, lists, tuples, tensors, arrays, numbers, strings, None).

    For checkpoints and model files: a file that still loads but whose tensors or metadata were
    altered (a flipped bit inside a valid zip: ``torch.load`` checks no CRC) no longer matches
    the digest stored beside the payload at save time. Every leaf is hashed with its type,
    dtype and shape, so the digest depends on content only, not on how the file was written.
    """
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest, obj) -> None:
    import numpy as np

    torch = _torch_if_loaded()
    if torch is not None and isinstance(obj, torch.Tensor):
        flat = obj.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"T|{obj.dtype}|{tuple(obj.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy())
    elif isinstance(obj, np.ndarray):
        flat = np.ascontiguousarray(obj).reshape(-1)
        digest.update(f"A|{obj.dtype.str}|{obj.shape}|".encode())
        digest.update(flat.view(np.uint8))
    elif isinstance(obj, dict):
        digest.update(f"D{len(obj)}|".encode())
        for key in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _feed(digest, key)
            _feed(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}|".encode())
        for item in obj:
            _feed(digest, item)
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        digest.update(f"{type(obj).__name__}|{obj!r}|".encode())
    else:
        raise TypeError(f"payload_sha256: cannot hash a {type(obj).__name__}")


def _torch_if_loaded():
    """torch, if the caller already imported it (io itself stays importable without torch)."""
    import sys

    return sys.modules.get("torch")
