"""bench.denormal: subnormal Adam moments, and what flushing them to zero changes (D50)."""

import pytest
import torch

from bench import denormal


def test_make_subnormal_puts_the_share_of_moments_in_the_subnormal_range_and_counts_them():
    p = torch.nn.Parameter(torch.ones(200, 50))
    opt = torch.optim.Adam([p])
    p.grad = torch.full_like(p, 0.5)
    opt.step()
    denormal.make_subnormal(opt, p, share=0.5)
    sub, total = denormal.subnormal_count(opt)
    assert total == 2 * p.numel()
    # each entry is chosen with probability 0.5, the same entries for both moments: 10,000 draws
    assert abs(sub / total - 0.5) < 5 * (0.25 / p.numel()) ** 0.5
    v = opt.state[p]["exp_avg_sq"]
    chosen = v < denormal.TINY
    assert bool((v[chosen] >= 2.0 ** -149).all()) and bool((opt.state[p]["exp_avg"][chosen] < denormal.TINY).all())


def test_flushing_subnormal_moments_changes_no_parameter_of_one_step():
    """From the same state, one step with flush-to-zero gives the very same parameters: a flushed
    moment (< 2^-126) is added to β·(a normal gradient term) more than 2^24 times larger, so it is
    below half an ulp of the sum either way (the argument of D50, at real shapes)."""
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero")
    torch.set_flush_denormal(False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # as the bench's main: this process's workers started unflushed
    try:
        r = denormal.run(classes=300, share=0.9, repeats=1, rounds=1)
    finally:
        torch.set_num_threads(threads)
    expected = 2 * 0.9 * r["layer"]                       # both moments of the share of the output layer
    assert abs(r["subnormal"] - expected) < 5 * 2 * (r["layer"] * 0.9 * 0.1) ** 0.5   # one mask: 2 x binomial
    assert r["max_param_change"] == 0.0
    assert (torch.tensor([2.0 ** -140]) * 1.0).item() == 2.0 ** -140     # flush is off again
