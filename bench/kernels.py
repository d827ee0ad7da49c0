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
from vaeas.models import VAE, StackedVAE, make_labels
from vaeas.training import LOGGED, RunSpec, StackedSpec, backward, binarize, loss_terms, make_optimizer

NOT_KERNELS = {"empty", "empty_strided", "empty_like", "view", "as_strided", "t", "transpose", "expand",
               "select", "slice", "unsqueeze", "squeeze", "reshape", "_reshape_alias", "detach", "lift_fresh",
               "alias", "result_type", "_unsafe_view", "resize_", "unflatten", "chunk", "split", "narrow",
               "permute", "item", "_local_scalar_dense", "is_nonzero", "numpy_T", "mT", "set_"}


def kernels_per_step(objective: str, stack: int = 1, n: int = 1247, batch: int = 128) -> int:
    torch.set_num_threads(1)
    labels = make_labels(n, LabelConfig())
    cfg = Config(model=ModelConfig(hidden_units=32, latent_dim=8), training=TrainingConfig(batch_size=batch))
    classes = labels.classes if objective == "vaeas" else 0
    models = []
    for k in range(stack):
        torch.manual_seed(k)
        models.append(VAE(64, cfg.model, classes=classes))
    model = models[0] if stack == 1 else StackedVAE(models)
    opt = make_optimizer(model, cfg)
    gens = ([torch.Generator().manual_seed(k) for k in range(stack)] if stack > 1 else torch.Generator().manual_seed(0))
    spec = (RunSpec("digits", objective) if stack == 1
            else StackedSpec(objective, torch.ones(stack), torch.ones(stack)))
    data = torch.rand(n, 64)
    pv, pc = model.vae_parameters(), model.classifier_parameters()
    logged = torch.empty((1, stack, len(LOGGED)), dtype=torch.float64)
    perms = [torch.randperm(n) for _ in range(stack)]

    def step():
        idx = [p[:batch] for p in perms]
        if stack == 1:
            x, lab = binarize(data[idx[0]], gens), labels.labels[idx[0]]
        else:
            x = torch.stack([binarize(data[i], g) for i, g in zip(idx, gens)])
            lab = torch.stack([labels.labels[i] for i in idx])
        terms = loss_terms(model, x, lab if classes else None, spec, labels, gens)
        opt.zero_grad(set_to_none=True)
        backward(terms, pv, pc)
        opt.step()
        logged[0] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED], -1)

    step(), step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children
               and e.name[len("aten::"):] not in NOT_KERNELS)


def main() -> int:
    for objective, stack in [("vaeas", 1), ("vae", 1), ("vaeas", 12)]:
        print(f"{objective:5s} x {stack:2d} stacked: {kernels_per_step(objective, stack)} kernels per step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
