"""vaeas: reproduction pipeline for "Improve Variational Autoencoder with Auxiliary Softmax
Multiclassifier" (VAE-AS).

Modules (and packages) one per concept, dependencies pointing one way:
``config`` and ``runtime`` (leaves) → ``data`` → ``models`` / ``experiments`` (the grid and its
paths) → ``estimators`` / ``metrics`` / ``passes`` / ``monitoring`` / ``refit`` → ``training`` → ``evaluation`` / ``pipeline`` / ``finished`` → ``report``
→ ``cli``, the only entry point the pipeline (Snakemake, DVC) calls. ``tests/test_architecture.py``
checks that no import points the other way, that there is no cycle, and that no file is over 400
lines.
"""

__version__ = "0.1.0"

#: The packages whose versions decide the numbers and the pipeline (pinned or locked in
#: pyproject.toml): ``vaeas --version`` and REPORT.md's provenance list exactly these.
KEY_PACKAGES = ("torch", "torchvision", "numpy", "pandas", "seaborn", "matplotlib", "tabulate", "snakemake", "dvc")


def package_versions() -> dict[str, str | None]:
    """Installed version of vaeas and of each of :data:`KEY_PACKAGES` (None when not installed),
    read from the installed distributions' metadata (no package is imported)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in ("vaeas", *KEY_PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


#: Device files of a GPU driver (NVIDIA, WSL, ROCm).
GPU_DRIVER_PATHS = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")


def gpu_driver_present() -> bool:
    """Whether this host has a GPU driver, answered without importing torch (seconds per
    process): a job that only needs to know whether a GPU is there asks this first."""
    import os

    return any(os.path.exists(p) for p in GPU_DRIVER_PATHS)


def cpu_model() -> str:
    """The CPU's model name as lscpu prints it (/proc/cpuinfo's "model name")."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
