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


_ALLOCATOR_TUNED = False


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
