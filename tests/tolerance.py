"""Numeric tolerances derived from the computation, never tuned on one machine's output.

This project's machines are not one CPU (AMD EPYC with AVX-512; Intel Xeon with AMX): their
BLAS and vectorised kernels sum in other orders, with or without FMA, over other block sizes and
thread counts, so the last bits of a result differ between them. A tolerance read off one
machine's error fails on the other (issue 20: 1.0078e-6 against a bound of 1e-6 on Intel). The
bounds below are worst cases of IEEE-754 rounding, which hold for every summation order:

* one rounded operation errs by at most u·|result|, with the unit roundoff u = eps / 2;
* a sum or dot product of n terms, in any order, with or without FMA, errs by at most
  γ_n · Σ|terms|, γ_n = n·u / (1 − n·u) (Higham, *Accuracy and Stability of Numerical
  Algorithms*, 2nd ed., 2002, §3.1, eq. 3.5 and Lemma 3.1).

A test names the dtype, the number of operations and the magnitude of the terms behind its
result, and takes its tolerance from these functions; a ``safety`` factor, where one is used,
covers lower-order terms the comment names (exp and log of libm, within a few ulp).
"""

from __future__ import annotations

import torch


def unit_roundoff(dtype: torch.dtype) -> float:
    """u = eps / 2: the largest relative error of one correctly rounded operation."""
    return torch.finfo(dtype).eps / 2


def gamma(n: int, dtype: torch.dtype) -> float:
    """γ_n = n·u / (1 − n·u), the relative error bound of an n-term sum in any order."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"gamma: n = {n} is too large for {dtype} (n·u = {nu} ≥ 1)")
    return nu / (1 - nu)


def sum_bound(n: int, magnitude: float, dtype: torch.dtype, safety: float = 1.0) -> float:
    """Absolute error bound of an n-term sum (or dot product) whose terms' absolute values sum
    to at most ``magnitude``: γ_n · magnitude, times ``safety``."""
    return safety * gamma(n, dtype) * magnitude


def ops_bound(dtype: torch.dtype, *magnitudes: float, safety: float = 1.0) -> float:
    """Absolute error bound of a chain of operations, one rounding per intermediate result, the
    results at most ``magnitudes`` (numbers or one-element tensors) in absolute value: u · Σ|m|,
    times ``safety``."""
    values = (float(m.detach()) if isinstance(m, torch.Tensor) else float(m) for m in magnitudes)
    return safety * unit_roundoff(dtype) * sum(abs(v) for v in values)
