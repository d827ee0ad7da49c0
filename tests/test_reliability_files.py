"""Reliability (issue 6): numerical faults stop a run and keep its last good checkpoint; corrupt
or altered files are refused with one line, never used; downloads come only over https from the
pinned hosts or from the configured mirror, and every file is hash-checked whatever the route.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import functools
import http.server
import io
import ipaddress
import json
import ssl
import struct
import threading
import urllib.error
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from vaeas import data
from vaeas.cli import main
from vaeas.config import Config, DataConfig, ModelConfig, TrainingConfig
from vaeas.errors import VaeasError
from vaeas.io import payload_sha256
from vaeas.training import RunSpec, load_model, train

from conftest import serve_directory

STEPS_PER_EPOCH = 5     # ceil(1,247 digits / batch 256)


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    data.process("digits", DataConfig(root=str(root)))
    return root


def small_config(root: Path, epochs: int = 4) -> Config:
    return Config(data=DataConfig(root=str(root)),
                  model=ModelConfig(latent_dim=4, hidden_units=16, encoder_layers=1, decoder_layers=1, classifier_layers=1),
                  training=TrainingConfig(epochs=epochs, batch_size=256, device="cpu"))


SPEC = RunSpec("digits", "vaeas", {"alpha": 1.0, "beta": 1.0}, seed=2)


def run_main(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# --------------------------------------------------------------------------------------------
# Numerical faults

@pytest.fixture(scope="module")
def clean_model(digits_root, tmp_path_factory) -> Path:
    return train(small_config(digits_root), SPEC, tmp_path_factory.mktemp("clean") / "model.pt", progress=False)


class PoisonedAdam(torch.optim.Adam):
    """Adam that writes ``value`` into the first weight after its ``at``-th step (1-based)."""

    at: int = 0
    value: float = float("nan")
    steps: int = 0

    def step(self, closure=None):
        loss = super().step(closure)
        PoisonedAdam.steps += 1
        if PoisonedAdam.steps == PoisonedAdam.at:
            with torch.no_grad():
                self.param_groups[0]["params"][0].view(-1)[0] = PoisonedAdam.value
        return loss


@pytest.mark.parametrize("value,at,epoch,step", [
    (float("nan"), STEPS_PER_EPOCH + 2, 2, 3),     # epoch 2, step 2 poisons; step 3's loss is NaN
    (float("inf"), STEPS_PER_EPOCH + 1, 2, 2),     # Inf in a weight: 0·Inf gives a NaN loss next step
    (float("nan"), 2 * STEPS_PER_EPOCH, 2, 5),     # the last step of epoch 2: seen in the parameters
])
def test_non_finite_values_stop_the_run_naming_epoch_and_step_and_keep_the_last_good_checkpoint(
        digits_root, clean_model, tmp_path, monkeypatch, value, at, epoch, step):
    cfg = small_config(digits_root)

    monkeypatch.setattr(torch.optim, "Adam", PoisonedAdam)
    monkeypatch.setattr(PoisonedAdam, "at", at)
    monkeypatch.setattr(PoisonedAdam, "value", value)
    monkeypatch.setattr(PoisonedAdam, "steps", 0)
    out = tmp_path / "run" / "model.pt"
    with pytest.raises(VaeasError) as info:
        train(cfg, SPEC, out, progress=False)
    message = str(info.value)
    assert PoisonedAdam.steps >= at, "the fault was never injected"
    assert "non-finite" in message and f"epoch {epoch}, step {step}" in message, message
    ckpt = out.with_name("model.pt.ckpt")
    assert str(ckpt) in message and "kept" in message, message
    assert not out.exists()
    kept = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert kept["epoch"] == epoch - 1
    assert all(torch.isfinite(t).all() for t in kept["model"].values())

    # The kept checkpoint is good: without the fault, the rerun resumes to the clean result.
    monkeypatch.undo()
    resumed = train(cfg, SPEC, out, progress=False)
    a, b = (torch.load(p, weights_only=False) for p in (clean_model, resumed))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


# --------------------------------------------------------------------------------------------
# The machine fails: a full disk, a folder that cannot be written (issue 12)

def small_params(tmp_path: Path, root: Path) -> Path:
    """params.yaml for :func:`small_config` (the same train group, so a rerun resumes its checkpoint)."""
    path = tmp_path / "params.yaml"
    path.write_text(f"data: {{root: '{root}'}}\n"
                    "model: {latent_dim: 4, hidden_units: 16, encoder_layers: 1, decoder_layers: 1, classifier_layers: 1}\n"
                    "training: {epochs: 4, batch_size: 256, device: cpu}\n")
    return path


def disk_full_at(monkeypatch, module, n: int, suffix: str) -> list:
    """Make the ``n``-th atomic write of a file ending in ``suffix`` through ``module`` fail as a
    full disk does: some bytes reach the temporary file, then ENOSPC (an OSError without a path)."""
    real, seen = module.atomic_path, []

    @contextlib.contextmanager
    def atomic_path(path):
        with real(path) as tmp:
            if str(path).endswith(suffix):
                seen.append(path)
                if len(seen) == n:
                    tmp.write_bytes(b"half a checkpoint")
                    raise OSError(errno.ENOSPC, "No space left on device")
            yield tmp

    monkeypatch.setattr(module, "atomic_path", atomic_path)
    return seen


def test_disk_full_during_train_is_one_line_naming_the_path_and_keeps_the_last_good_checkpoint(
        digits_root, clean_model, tmp_path, monkeypatch):
    import vaeas.training.checkpoint as checkpoint

    params, out = small_params(tmp_path, digits_root), tmp_path / "run" / "model.pt"
    ckpt = out.with_name("model.pt.ckpt")
    argv = ("train", "--params", str(params), "--dataset", "digits", "--seed", "2", "--out", str(out), "--quiet")
    seen = disk_full_at(monkeypatch, checkpoint, 3, ".ckpt")
    code, err = run_main(*argv)
    assert len(seen) == 3, "the fault was never injected"
    assert (code, one_line(err)) == (2, f"vaeas: error: cannot write {ckpt}: No space left on device; "
                                        f"the last good checkpoint {ckpt} is kept; rerun the same command to resume from it")
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.log.csv", "model.pt.ckpt"]   # no temp file
    from vaeas.experiments import load_config

    kept = checkpoint.load_checkpoint(ckpt, load_config(params), SPEC)     # whole, and this run's
    assert kept["epoch"] == 2 and len(kept["history"]) == 2

    monkeypatch.undo()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(list(argv)) == 0
    assert "starting from scratch" not in stdout.getvalue()
    a, b = (torch.load(p, weights_only=False) for p in (clean_model, out))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_disk_full_writing_the_final_model_keeps_the_checkpoint(digits_root, tmp_path, monkeypatch):
    import vaeas.training.checkpoint as checkpoint

    params, out = small_params(tmp_path, digits_root), tmp_path / "model.pt"
    disk_full_at(monkeypatch, checkpoint, 1, "model.pt")
    code, err = run_main("train", "--params", str(params), "--dataset", "digits", "--out", str(out), "--quiet")
    assert (code, one_line(err)) == (2, f"vaeas: error: cannot write {out}: No space left on device; the last good "
                                        f"checkpoint {out}.ckpt is kept; rerun the same command to resume from it")
    assert not out.exists() and torch.load(f"{out}.ckpt", weights_only=False)["epoch"] == 4


@pytest.mark.parametrize("err_no,strerror,advice", [
    (errno.ENOSPC, "No space left on device", "free some space and rerun the same command (finished outputs "
                                              "are kept; training resumes from its last checkpoint)"),
    (errno.EACCES, "Permission denied", "check that this user may read and write there (owner, mode, read-only mount)"),
    (errno.EROFS, "Read-only file system", "check that this user may read and write there (owner, mode, read-only mount)"),
])
def test_any_command_that_cannot_write_says_so_in_one_line_naming_the_path(tmp_path, monkeypatch, err_no, strerror, advice):
    """Every writer goes through io.atomic_path: its failure names the destination, not the temp file."""
    import vaeas.data.store as store

    root = tmp_path / "data"
    real = store.atomic_path

    @contextlib.contextmanager
    def failing(path):
        with real(path) as tmp:
            raise OSError(err_no, strerror)
            yield tmp

    monkeypatch.setattr(store, "atomic_path", failing)
    params = tmp_path / "params.yaml"
    params.write_text(f"data: {{root: '{root}'}}\n")
    code, err = run_main("process", "digits", "--params", str(params))
    target = root / "processed" / "digits.npz"
    assert (code, one_line(err)) == (1, f"vaeas: error: {target}: {strerror}; {advice}")
    assert list(target.parent.iterdir()) == []


def poisoned_copy(root: Path, dest: Path, rewrite_hash: bool) -> Path:
    """digits with one NaN pixel: written through write_processed (a faulty processing step,
    hash recomputed) or spliced into the file keeping the old meta (an altered file)."""
    arrays, meta = data.read_processed(data.processed_path("digits", root), "digits")
    arrays = {k: v.copy() for k, v in arrays.items()}
    arrays["train_x"][5, 3, 3] = np.nan
    path = data.processed_path("digits", dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if rewrite_hash:
        data.write_processed(path, arrays, {k: v for k, v in meta.items() if k != "arrays_sha256"})
    else:
        data.write_canonical_npz(path, {**arrays, "meta": np.array(json.dumps(meta, sort_keys=True))})
    return path


def test_data_with_nan_is_refused_at_load_not_trained_on(digits_root, tmp_path):
    path = poisoned_copy(digits_root, tmp_path, rewrite_hash=True)
    with pytest.raises(VaeasError) as info:
        data.load("digits", str(tmp_path))
    assert str(info.value) == (f"{path}: train_x has 1 values that are NaN, infinite or outside [0, 1]; "
                               f"rerun 'vaeas process digits'")
    params = tmp_path / "params.yaml"
    params.write_text(f"data:\n  root: {tmp_path}\ntraining:\n  device: cpu\n")
    out = tmp_path / "run" / "model.pt"
    code, err = run_main("train", "--params", str(params), "--dataset", "digits", "--out", str(out), "--quiet")
    assert code == 2 and one_line(err) == f"vaeas: error: {info.value}"
    assert not out.parent.exists()


# --------------------------------------------------------------------------------------------
# Corrupt processed data

def test_altered_but_loadable_processed_file_is_refused(digits_root, tmp_path):
    path = poisoned_copy(digits_root, tmp_path, rewrite_hash=False)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None            # every CRC is right: only the hash can tell
    with pytest.raises(VaeasError) as info:
        data.load("digits", str(tmp_path))
    assert str(info.value).startswith(f"{path} was altered: its arrays hash to sha256 ")
    assert str(info.value).endswith("; rerun 'vaeas process digits'")


def test_processed_file_without_a_recorded_hash_is_refused(digits_root, tmp_path):
    arrays, meta = data.read_processed(data.processed_path("digits", digits_root), "digits")
    path = data.processed_path("digits", tmp_path)
    path.parent.mkdir(parents=True)
    old_meta = {k: v for k, v in meta.items() if k != "arrays_sha256"}
    data.write_canonical_npz(path, {**arrays, "meta": np.array(json.dumps(old_meta))})
    with pytest.raises(VaeasError, match=r"records no arrays_sha256 \(written by an older vaeas\); rerun 'vaeas process digits'"):
        data.load("digits", str(tmp_path))


def test_processed_hash_is_stable_and_recorded(digits_root):
    arrays, meta = data.read_processed(data.processed_path("digits", digits_root), "digits")
    assert meta["arrays_sha256"] == data.arrays_sha256(arrays)
    arrays["test_y"] = arrays["test_y"].copy()
    arrays["test_y"][0] += 1
    assert data.arrays_sha256(arrays) != meta["arrays_sha256"]


# --------------------------------------------------------------------------------------------
# Corrupt checkpoints and model files

def flip_bytes_inside_a_tensor(path: Path) -> None:
    """Flip bits in the first tensor record of a torch zip, leaving a file that still loads
    (torch.load checks no CRC): the silent kind of corruption."""
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 64)
    name_len, extra_len = struct.unpack("<HH", content[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(start + 8, start + 24):
        content[i] ^= 0x10
    path.write_bytes(bytes(content))


def reweight(path: Path) -> None:
    """Load, change one weight by 1e-3, save again with torch.save: a valid file, other numbers."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    first = next(iter(blob["model"]))
    blob["model"][first] = blob["model"][first].clone()
    blob["model"][first].view(-1)[0] += 1e-3
    torch.save(blob, path)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {"truncated": truncate, "flipped-bytes": flip_bytes_inside_a_tensor, "re-saved-with-other-weights": reweight}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_checkpoint_is_refused_not_resumed(digits_root, tmp_path, damage):
    cfg = small_config(digits_root, epochs=3)
    out = tmp_path / "model.pt"
    ckpt = train(cfg, SPEC, out, progress=False, stop_after_epoch=1)
    torch.load(ckpt, weights_only=False)                   # intact, it loads
    DAMAGE[damage](ckpt)
    with pytest.raises(VaeasError) as info:
        train(cfg, SPEC, out, progress=False)
    message = str(info.value)
    assert "\n" not in message and str(ckpt) in message, message
    assert not out.exists()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_model_file_is_refused_by_load_and_by_evaluate(digits_root, tmp_path, damage):
    model = train(small_config(digits_root, epochs=1), SPEC, tmp_path / "model.pt", progress=False)
    DAMAGE[damage](model)
    with pytest.raises(VaeasError) as info:
        load_model(model)
    assert "\n" not in str(info.value) and str(model) in str(info.value)
    metrics = tmp_path / "metrics.json"
    code, err = run_main("evaluate", "--model", str(model), "--out", str(metrics), "--quiet")
    assert code == 2 and one_line(err).startswith("vaeas: error: ") and str(model) in err
    assert not metrics.exists()


def test_payload_digest_sees_every_bit_and_nothing_else():
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3, dtype=torch.bfloat16)},
             "history": [{"loss": float("nan"), "epoch": 1}], "generator": torch.Generator().get_state(),
             "groups": [{"betas": (0.9, 0.999), "lr": 1e-3, "fused": None}]}
    digest = payload_sha256(state)
    assert payload_sha256(json.loads(json.dumps({"x": 1}))) == payload_sha256({"x": 1})
    buffer = io.BytesIO()
    torch.save(state, buffer)
    assert payload_sha256(torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)) == digest
    flipped = {**state, "model": {**state["model"], "w": state["model"]["w"].clone()}}
    flipped["model"]["w"].view(-1).view(torch.int32)[4] ^= 1            # one bit of one float
    assert payload_sha256(flipped) != digest
    assert payload_sha256({**state, "history": [{"loss": float("nan"), "epoch": 2}]}) != digest
    assert payload_sha256({**state, "model": {**state["model"], "w": state["model"]["w"].double()}}) != digest


# --------------------------------------------------------------------------------------------
# Downloads

def test_every_official_source_is_https():
    for dataset in data.DATASETS:
        for source in ("burda", "lake"):
            for alternatives in data.raw_alternatives(dataset, DataConfig(omniglot_source=source)):
                for spec in alternatives:
                    assert all(url.startswith("https://") for url in spec.official_urls), spec


@pytest.mark.parametrize("dataset,source", [("mnist", "burda"), ("omniglot", "burda"), ("omniglot", "lake")])
def test_without_a_mirror_only_the_pinned_https_urls_are_requested(tmp_path, monkeypatch, dataset, source):
    requested = []

    def offline(request):
        requested.append(request.full_url)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(data.download, "_open_url", offline)
    cfg = DataConfig(root=str(tmp_path), lock_file=str(tmp_path / "lock.json"), omniglot_source=source)
    with pytest.raises(VaeasError):
        data.fetch(dataset, cfg, progress=False)
    pinned = {url for alts in data.raw_alternatives(dataset, cfg) for spec in alts for url in spec.official_urls}
    assert requested and set(requested) <= pinned and all(u.startswith("https://") for u in requested), requested
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_with_a_mirror_only_the_mirror_is_requested(tmp_path, monkeypatch):
    requested = []

    def offline(request):
        requested.append(request.full_url)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(data.download, "_open_url", offline)
    cfg = DataConfig(root=str(tmp_path), mirror="http://127.0.0.1:9/m", lock_file=str(tmp_path / "lock.json"))
    with pytest.raises(VaeasError):
        data.fetch("mnist", cfg, progress=False)
    assert requested and all(u.startswith("http://127.0.0.1:9/m/mnist/") for u in requested), requested


def wrong_mnist_mirror(root: Path) -> Path:
    """A mirror with every MNIST file present under its right name, and the wrong bytes."""
    for name in data.MNIST_FILES:
        path = root / "mnist" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x1f\x8b not the MNIST file " + name.encode())
    return root


def test_directory_mirror_serving_wrong_files_is_refused(tmp_path):
    mirror = wrong_mnist_mirror(tmp_path / "mirror")
    cfg = DataConfig(root=str(tmp_path / "root"), mirror=str(mirror), lock_file=str(tmp_path / "lock.json"))
    with pytest.raises(data.ChecksumMismatch, match=r"^checksum mismatch for train-images-idx3-ubyte.gz: expected sha256 440fcabf"):
        data.fetch("mnist", cfg, progress=False)
    assert not any(p.is_file() for p in (tmp_path / "root").rglob("*"))


class _Redirect(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002
        pass


@contextlib.contextmanager
def redirecting_server(target: str, context: ssl.SSLContext | None = None) -> Iterator[str]:
    handler = type("Redirect", (_Redirect,), {"target": target})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_redirect_to_another_host_is_followed_and_still_hash_checked(tmp_path):
    wrong = wrong_mnist_mirror(tmp_path / "elsewhere")
    with serve_directory(wrong) as elsewhere, redirecting_server(elsewhere) as mirror:
        cfg = DataConfig(root=str(tmp_path / "root"), mirror=mirror, lock_file=str(tmp_path / "lock.json"))
        with pytest.raises(data.ChecksumMismatch, match=r"^checksum mismatch for train-images-idx3-ubyte.gz"):
            data.fetch("mnist", cfg, progress=False)
    assert not any(p.is_file() for p in (tmp_path / "root").rglob("*"))


def test_redirect_to_another_host_serving_the_right_file_is_accepted(tmp_path, shared_data):
    with serve_directory(shared_data) as elsewhere, redirecting_server(elsewhere) as mirror:
        spec = data.RawFile("mnist", "t10k-labels-idx1-ubyte.gz", (), data.KNOWN_SHA256["mnist/t10k-labels-idx1-ubyte.gz"])
        cfg = DataConfig(root=str(tmp_path), mirror=mirror, lock_file=str(tmp_path / "lock.json"))
        found = data.download_verified(spec, tmp_path / "raw", cfg, progress=False)
    assert found.official and found.path.is_file()


@pytest.fixture
def https_context(tmp_path, monkeypatch) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 that clients trust (via
    SSL_CERT_FILE, read by urllib's default context)."""
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_https_redirect_to_plain_http_is_refused(tmp_path, https_context):
    wrong = wrong_mnist_mirror(tmp_path / "plain")
    requests_seen = []

    class Counting(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests_seen.append(self.path)
            super().do_GET()

        def log_message(self, format, *args):  # noqa: A002
            pass

    handler = functools.partial(Counting, directory=str(wrong))
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    try:
        with redirecting_server(f"http://127.0.0.1:{plain.server_address[1]}", https_context) as mirror:
            cfg = DataConfig(root=str(tmp_path / "root"), mirror=mirror, lock_file=str(tmp_path / "lock.json"))
            with pytest.raises(VaeasError) as info:
                data.fetch("mnist", cfg, progress=False)
    finally:
        plain.shutdown()
        plain.server_close()
    assert str(info.value).startswith(f"cannot download train-images-idx3-ubyte.gz from {mirror}/mnist/train-images-idx3-ubyte.gz: "
                                      f"refused redirect from https to http://127.0.0.1:")
    assert requests_seen == []
    assert not any(p.is_file() for p in (tmp_path / "root").rglob("*"))
