"""Shared fixtures: the offline data mirror, served over real local HTTP servers.

The mirror lives beside the repository at ``<repo>/../shared/data`` (env ``VAEAS_SHARED_DATA``
overrides); tests that need it skip when it is absent. Servers bind 127.0.0.1 on a free port
and run in a daemon thread for the whole session: no test reaches a real host.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The offline data mirror: env VAEAS_SHARED_DATA, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("VAEAS_SHARED_DATA") or REPO.parent / "shared" / "data")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep pytest output clean
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (free port); yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment():
    """No user mirror override, and no proxy between the tests and their local servers."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VAEAS_DATA_MIRROR", raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the offline data mirror, or skip."""
    path = shared_data_dir()
    if not (path / "mnist").is_dir():
        pytest.skip(mirror_skip_reason(path))
    return path


def mirror_skip_reason(path: Path) -> str:
    """Why a test that needs the offline mirror was skipped, and how to run it instead."""
    return (f"offline data mirror not found at {path} (no mnist/ in it); to run this test, set "
            f"VAEAS_SHARED_DATA=/path/to/shared/data, the folder holding mnist/ and omniglot/")


@pytest.fixture(scope="session")
def mirror_url(shared_data: Path) -> Iterator[str]:
    """The offline mirror served over HTTP."""
    with serve_directory(shared_data) as url:
        yield url


@pytest.fixture(scope="session")
def corrupt_mirror(shared_data: Path, tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """A copy of the MNIST mirror with bytes flipped in train-labels and t10k-labels truncated.

    Yields the copy's directory and its HTTP URL.
    """
    root = tmp_path_factory.mktemp("corrupt_mirror")
    shutil.copytree(shared_data / "mnist", root / "mnist")
    for path in (root / "mnist").iterdir():
        path.chmod(0o644)
    flipped = root / "mnist" / "train-labels-idx1-ubyte.gz"
    data = bytearray(flipped.read_bytes())
    for i in range(100, 110):
        data[i] ^= 0xFF
    flipped.write_bytes(bytes(data))
    truncated = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with serve_directory(root) as url:
        yield root, url


class _ShortReadHandler(http.server.BaseHTTPRequestHandler):
    """Promises 1,000 bytes and sends 10, then closes: a download cut short."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.close_connection = True

    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture(scope="session")
def short_read_url() -> Iterator[str]:
    """A server whose every response stops short of its Content-Length."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ShortReadHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- helpers of the data tests (tests/test_data_*.py) -------------------------------------

OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


def config(root: Path, mirror: str = "", **kw):
    """A DataConfig rooted in a test folder, with its own lock file."""
    from vaeas.config import DataConfig

    return DataConfig(root=str(root), mirror=mirror, lock_file=str(root / "checksums.lock.json"), **kw)


def files_under(folder: Path) -> list[str]:
    """Every file name under ``folder`` (hidden temp files included)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def message(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def fetched_and_processed(dataset: str, mirror_url: str, tmp_path_factory) -> Path:
    """A data root with ``dataset`` fetched over HTTP from ``mirror_url`` and processed."""
    from vaeas import data

    root = tmp_path_factory.mktemp(dataset)
    cfg = config(root, mirror_url)
    data.fetch(dataset, cfg, progress=False)
    data.process(dataset, cfg)
    return root


@pytest.fixture(scope="session")
def omniglot_root(mirror_url, tmp_path_factory) -> Path:
    """Omniglot (lake source, npz form) fetched over HTTP and processed once."""
    return fetched_and_processed("omniglot", mirror_url, tmp_path_factory)
