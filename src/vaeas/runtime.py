"""Where and how tensors run: the device, bf16 autocast, the allocator, and the binarization
of inputs (dynamic for training, fixed and seeded for evaluation).

A leaf: training, evaluation and reporting all import it, and it imports nothing of vaeas but
:mod:`vaeas.errors`.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .errors import VaeasError


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cuda' without a GPU is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaeasError("training.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device(name)


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast when asked (CUDA or CPU); TF32 is a global matmul switch set by :mod:`vaeas.training`."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags as Linux lists them (the first ``flags`` line); None where the
    file is absent or has no such line (another OS), so callers can tell unknown from absent."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def effective_precision(device: torch.device, precision: str, flags: frozenset[str] | None = None) -> tuple[str, str | None]:
    """The precision a run trains in, and a one-line note when it differs from the one asked.

    bf16 autocast on a CPU pays only where the CPU multiplies bf16 natively (AVX512-BF16 or
    AMX-BF16): elsewhere oneDNN emulates it, slower than fp32 and no more faithful
    (docs/performance.md §1b). So ``bf16`` on such a CPU falls back to ``fp32`` and says so; the
    model file records the precision used. CUDA devices are left as asked. ``flags``: the CPU's
    flags (default: :func:`cpu_flags`); unknown flags (no /proc/cpuinfo) keep bf16 as asked.
    """
    if precision != "bf16" or device.type != "cpu":
        return precision, None
    flags = cpu_flags() if flags is None else flags
    if flags is None or any(f in flags for f in BF16_CPU_FLAGS):
        return precision, None
    return "fp32", ("training.precision 'bf16': this CPU has no bf16 matmul instructions "
                    f"({' or '.join(BF16_CPU_FLAGS)} absent from its flags); training in fp32 instead")


_ALLOCATOR_TUNED = False


def set_flush_denormal(on: bool) -> bool:
    """Flush float32 subnormals to zero, or not (x86 FTZ/DAZ through ``torch.set_flush_denormal``;
    D50), and say whether every torch thread now computes that way.

    The flag is a per-thread register: torch's intra-op worker threads copy the calling thread's
    when they start and keep it, so a setting made after they started reaches this thread only.
    The probe multiplies 2^-120 by 2^-20 (a subnormal result) on every thread's share of a tensor
    and reads the results' bits as integers (a float comparison would itself obey DAZ). A CPU
    without flush-to-zero holds "off" everywhere and "on" nowhere.
    """
    if not torch.set_flush_denormal(on):
        return not on
    threads = max(1, torch.get_num_threads())
    out = torch.full((threads * 65_536,), 2.0 ** -120) * 2.0 ** -20     # above torch's grain: split over threads
    zero = out.view(torch.int32) == 0
    return bool(zero.all()) if on else not bool(zero.any())


def tune_allocator() -> bool:
    """Let glibc keep freed memory for reuse: no ``mmap`` for large blocks (M_MMAP_MAX = 0) and
    a 1 GiB trim threshold. By default every tensor over 32 MB (the 500 × 55,000 gradient, the
    IW-NLL's activations) gets fresh pages from the kernel and page-faults them in on every
    step; keeping them measured 5-10 % of a training step and of the IW-NLL (docs/performance.md).
    The process keeps its peak heap instead of returning it. Idempotent; False where there is
    no glibc (then nothing changes). ``MALLOC_MMAP_MAX_=0`` in the environment does the same.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        _ALLOCATOR_TUNED = bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False
    return _ALLOCATOR_TUNED


def binarize(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One Bernoulli draw per pixel with the pixel's intensity as probability (dynamic binarization)."""
    return torch.bernoulli(x, generator=generator)


def eval_binarized(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The fixed, seeded binarization used for every evaluation (same bits on every device)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x.detach().to("cpu", torch.float32), generator=gen).to(x.device)
