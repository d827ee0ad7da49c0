"""Benchmark 3: IW-NLL with k = 4096 (Burda et al. 2015) on a test subset, driven as
``vaeas.evaluation.evaluate`` drives it (vaeas.evaluation.iw_nll_dataset), at the paper's
MNIST shapes (decoder 40 → 500 × 5 → 784). Achieved FLOP/s (the decoder's and encoder's matmul
FLOPs over the wall time) against the sgemm rate of torch.mm at the same shapes."""

from __future__ import annotations

import torch

from vaeas.config import ModelConfig
from vaeas.evaluation import IW_ROWS, iw_nll_dataset
from vaeas.models import VAE

from .common import mm_time, time_fn
from .flops import decoder_forward_flops, encoder_forward_flops, widths

PIXELS = 784


def run(examples: int = 128, k: int = 4096, chunk: int = 512, repeats: int = 1, device="cpu") -> dict:
    cfg = ModelConfig()
    torch.manual_seed(0)
    model = VAE(PIXELS, cfg).to(device).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.bernoulli(torch.rand(examples, PIXELS, generator=torch.Generator().manual_seed(1))).to(device)
    flops = examples * k * decoder_forward_flops(PIXELS, cfg) + examples * encoder_forward_flops(PIXELS, cfg)
    iw_nll_dataset(model, x[:min(examples, 8)], min(k, chunk), chunk, gen)          # warm-up
    t = time_fn(lambda: iw_nll_dataset(model, x, k, chunk, gen), repeats, warmup=0, device=device)
    # sgemm at the same shapes: each decoder layer over the rows of one pass, as many passes as run.
    rows = min(chunk, k) * min(examples, max(1, IW_ROWS // min(chunk, k)))
    passes = examples * k / rows
    dims = widths(PIXELS, cfg)["decoder"]
    mm_s = sum(mm_time(rows, a, b, "nt", repeats=3, device=device).best for a, b in zip(dims, dims[1:])) * passes
    dec_flops = examples * k * decoder_forward_flops(PIXELS, cfg)
    return {"wall_s": t.best, "flops": flops, "achieved_flops_per_s": flops / t.best,
            "sgemm_flops_per_s": dec_flops / mm_s, "ratio": (flops / t.best) / (dec_flops / mm_s),
            "examples": examples, "k": k, "rows_per_pass": rows}
