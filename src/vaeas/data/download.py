"""Sources: official hosts, an HTTP mirror, or a local directory mirror; and :func:`fetch`."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping

from tqdm import tqdm

from .. import __version__
from ..config import DataConfig
from ..errors import VaeasError
from ..io import atomic_path
from .catalog import DOWNLOAD_TIMEOUT_S, EMBEDDED, RawFile, check_dataset, raw_alternatives, raw_dir
from .verification import ChecksumMismatch, NotOnSource, VerifiedFile, _warn_if_variant, pin_in_lock, read_lock, verified_present, verify


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def locations(spec: RawFile, mirror: str) -> tuple[str, ...]:
    """Where to get ``spec`` from, in order: URLs, or a path inside a local mirror."""
    if not mirror:
        return spec.official_urls
    if _is_url(mirror):
        return (f"{mirror.rstrip('/')}/{spec.key}",)
    return (str(Path(mirror.removeprefix("file://")) / spec.group / spec.name),)


def _check_mirror(mirror: str) -> None:
    if mirror and not _is_url(mirror) and not Path(mirror.removeprefix("file://")).is_dir():
        raise VaeasError(f"data mirror '{mirror}' is neither an http(s) URL nor an existing directory "
                         f"(set by data.mirror or VAEAS_DATA_MIRROR)")


class _HttpsStaysHttps(urllib.request.HTTPRedirectHandler):
    """Follow redirects (each is still hash-checked), but never from https to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.full_url.startswith("https://") and not newurl.startswith("https://"):
            raise urllib.error.URLError(f"refused redirect from https to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open_url(request: urllib.request.Request):
    return urllib.request.build_opener(_HttpsStaysHttps).open(request, timeout=DOWNLOAD_TIMEOUT_S)


def download_url(url: str, dest: Path, name: str, progress: bool) -> None:
    """Stream ``url`` into ``dest`` with a progress bar; one-line error if it fails or stops short.

    Redirects are followed except from https to http; whatever arrives is verified afterwards."""
    request = urllib.request.Request(url, headers={"User-Agent": f"vaeas/{__version__}"})
    try:
        with _open_url(request) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            # disable=None lets tqdm switch itself off when stderr is not a terminal (CI, logs).
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=name, leave=False,
                      disable=None if progress else True) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
            if total and out.tell() != total:
                raise VaeasError(f"cannot download {name} from {url}: truncated ({out.tell()} of {total} bytes)")
    except urllib.error.HTTPError as exc:
        error = NotOnSource if exc.code == 404 else VaeasError
        raise error(f"cannot download {name} from {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise VaeasError(f"cannot download {name} from {url}: {exc.reason}") from None
    except (OSError, ValueError) as exc:   # timeouts, resets, http.client.IncompleteRead
        raise VaeasError(f"cannot download {name} from {url}: {type(exc).__name__}: {exc}") from None


def copy_local(path: str, dest: Path, name: str) -> None:
    """Copy a file from a local mirror directory (verified afterwards like a download)."""
    if not Path(path).is_file():
        raise NotOnSource(f"cannot copy {name} from {path}: no such file")
    try:
        shutil.copyfile(path, dest)
    except OSError as exc:
        raise VaeasError(f"cannot copy {name} from {path}: {exc.strerror or exc}") from None


def _fetch_from(location: str, spec: RawFile, dest: Path, lock: Mapping, progress: bool) -> VerifiedFile:
    """Transfer one file into a temp file beside ``dest``, verify it, then rename it into place."""
    with atomic_path(dest) as tmp:
        if _is_url(location):
            download_url(location, tmp, spec.name, progress)
        else:
            copy_local(location, tmp, spec.name)
        found = verify(spec, tmp, lock, source=location)
    return VerifiedFile(dest, found.sha256, found.official, found.note, found.pin)


def _combine(errors: list[VaeasError], name: str) -> VaeasError:
    """One error from several failed attempts (kept as is when there was only one)."""
    if len(errors) == 1:
        return errors[0]
    kind = NotOnSource if all(isinstance(e, NotOnSource) for e in errors) else VaeasError
    return kind(f"all {len(errors)} sources failed for {name}: " + "; ".join(str(e) for e in errors))


def download_verified(spec: RawFile, folder: Path, cfg: DataConfig, progress: bool) -> VerifiedFile:
    """Fetch ``spec`` from each of its locations in turn until one gives verified bytes."""
    sources = locations(spec, cfg.effective_mirror)
    if not sources:
        raise NotOnSource(f"{spec.name} is only available from a data mirror (data.mirror or VAEAS_DATA_MIRROR)")
    errors: list[VaeasError] = []
    for location in sources:
        try:
            found = _fetch_from(location, spec, folder / spec.name, read_lock(cfg.lock_file), progress)
        except VaeasError as exc:
            errors.append(exc)
            continue
        if found.pin is not None:
            pin_in_lock(cfg.lock_file, spec.key, found.pin)
            print(f"{spec.key}: pinned sha256 {found.sha256} in {cfg.lock_file}")
        return found
    raise _combine(errors, spec.name)


def ensure_one_of(alternatives: tuple[RawFile, ...], folder: Path, cfg: DataConfig,
                  progress: bool) -> VerifiedFile:
    """A verified copy of the first available alternative: already present, else fetched.

    Alternatives are tried in order; the next one is tried only when a source does not have the
    previous one at all (so a mirror's zip is preferred to its npz, and a bad zip is an error).
    """
    lock = read_lock(cfg.lock_file)
    for spec in alternatives:
        found = verified_present(spec, folder, lock)
        if found is not None:
            print(f"{spec.key}: already present, sha256 verified")
            _warn_if_variant(found)
            return found
    errors: list[VaeasError] = []
    for spec in alternatives:
        if errors and not locations(spec, cfg.effective_mirror):
            continue   # npz alternatives exist only on a mirror
        try:
            found = download_verified(spec, folder, cfg, progress)
        except NotOnSource as exc:
            errors.append(exc)
            continue
        print(f"{spec.key}: fetched, sha256 {found.sha256[:12]}… verified")
        _warn_if_variant(found)
        return found
    raise _combine(errors, " or ".join(spec.name for spec in alternatives))


def fetch(dataset: str, cfg: DataConfig, progress: bool = True) -> list[Path]:
    """Download (or copy from the mirror) and verify a data set's raw files; return their paths.

    Files already present are re-verified and not downloaded again. ``digits`` is embedded in
    scikit-learn and needs nothing.
    """
    check_dataset(dataset)
    if dataset in EMBEDDED:
        where = "scikit-learn (sklearn.datasets.load_digits)" if dataset == "digits" else "vaeas (vaeas.data.omniglot_mini)"
        print(f"{dataset}: embedded in {where}; nothing to fetch")
        return []
    _check_mirror(cfg.effective_mirror)
    folder = raw_dir(dataset, cfg)
    created = _missing_folders(folder)
    try:
        return [ensure_one_of(alternatives, folder, cfg, progress).path
                for alternatives in raw_alternatives(dataset, cfg)]
    except VaeasError as exc:
        _remove_failed_output(folder, created)
        raise type(exc)(f"{exc}{_hint(exc, dataset, cfg)}") from None
    except BaseException:
        _remove_failed_output(folder, created)
        raise


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_failed_output(folder: Path, created: list[Path]) -> None:
    """A failed fetch leaves no raw folder behind: Snakemake and DVC take the folder, the fetch
    stage's output, for a finished fetch. A folder this fetch created goes with everything in
    it (only this fetch wrote there); a folder that was there before loses nothing, and goes
    only if it is empty. Parents this fetch created go if empty (another fetch may share them)."""
    if created and created[0] == folder:
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    for parent in created[1:]:
        try:
            parent.rmdir()
        except OSError:
            break


def _hint(exc: VaeasError, dataset: str, cfg: DataConfig) -> str:
    """What to change when a fetch fails for a reason the configuration can fix."""
    mirror = cfg.effective_mirror
    if isinstance(exc, ChecksumMismatch):
        return ""
    if not mirror:
        return ("; without internet, point data.mirror (params.yaml) or VAEAS_DATA_MIRROR at a copy laid out as "
                "<mirror>/mnist/*.gz, <mirror>/omniglot/* (e.g. VAEAS_DATA_MIRROR=../shared/data)")
    if dataset == "omniglot" and cfg.omniglot_source == "burda" and isinstance(exc, NotOnSource):
        return ("; the mirror has no chardata.mat (the offline copy holds the official images_background and "
                "images_evaluation): set data.omniglot_source: lake, or pass --set data.omniglot_source=lake")
    return ""
