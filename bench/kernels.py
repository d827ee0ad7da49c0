"""Count the kernels (compute ops) of one training step, as the H100 projection's launch cost
needs (bench/flops.py: KERNELS_PER_STEP). ``python -m bench.kernels``.

Counted with torch.profiler on CPU: leaf aten ops that compute (views, allocations and
metadata ops excluded). On CUDA each of them is one kernel launch, give or take the fused
Adam's multi-tensor launches.
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from vaeas.config import Config, LabelConfig, ModelConfig, TrainingConfig
from vaeas.models import VAE, make_labels
from vaeas.training import LOGGED, RunSpec, backward, binarize, loss_terms, make_optimizer

NOT_KERNELS = {"empty", "empty_strided", "empty_like", "view", "as_strided", "t", "transpose", "expand",
               "select", "slice", "unsqueeze", "squeeze", "reshape", "_reshape_alias", "detach", "lift_fresh",
               "alias", "result_type", "_unsafe_view", "resize_", "unflatten", "chunk", "split", "narrow",
               "permute", "item", "_local_scalar_dense", "is_nonzero", "numpy_T", "mT", "set_"}


def kernels_per_step(objective: str, n: int = 1247, batch: int = 128) -> int:
    torch.set_num_threads(1)
    spec = RunSpec("digits", objective)
    labels = make_labels(n, LabelConfig())
    cfg = Config(model=ModelConfig(hidden_units=32, latent_dim=8), training=TrainingConfig(batch_size=batch))
    classes = labels.classes if spec.definition.needs_classifier else 0
    torch.manual_seed(0)
    model = VAE(64, cfg.model, classes=classes)
    opt = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(0)
    data = torch.rand(n, 64)
    pv, pc = model.vae_parameters(), model.classifier_parameters()
    logged = torch.empty((1, len(LOGGED)), dtype=torch.float64)
    idx = torch.randperm(n)[:batch]

    def step():
        x, lab = binarize(data[idx], gen), labels.labels[idx]
        terms = loss_terms(model, x, lab if classes else None, spec, labels, gen)
        opt.zero_grad(set_to_none=True)
        backward(terms, pv, pc)
        opt.step()
        logged[0] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED])

    step(), step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children
               and e.name[len("aten::"):] not in NOT_KERNELS)


def main() -> int:
    # (K runs stacked into one model went with vaeas.training.train_many: docs/decisions.md D32.)
    for objective in ("vaeas", "vae"):
        print(f"{objective:5s}: {kernels_per_step(objective)} kernels per step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
