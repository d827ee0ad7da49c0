"""The regime study of docs/regime.md: how (and how fast) VAE-AS reaches the regime the paper
reports in, on real data, on a CPU.

One invocation trains one variant and appends a row per monitored epoch to a CSV:

    python -m bench.regime --name paper_n1000 --n 1000 --epochs 60 --every 5 --out docs/regime/runs.csv

Per monitored epoch, on the training subset with the evaluation's fixed binarization and one
z ~ q(z|x) per sample: NLL_train (reconstruction), KL_train, the softmax MI / MD / SC (eqs. 5,
9, 10, 8) and the Monte Carlo MI / MD over all N posteriors (S = N), plus the IW-NLL (k = 64)
of 500 test images. The training step is the package's own (``training.loss_terms`` and
``training.backward``); the levers the paper leaves open are arguments: initialisation, the
classifier's learning rate and its number of updates per VAE update, N, width, batch size,
epochs. Long: run in the background (``nohup … &``), never as a test.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

import torch

from vaeas import data as data_mod
from vaeas.config import DataConfig, LabelConfig, ModelConfig
from vaeas.estimators import (kl_standard_normal, marginal_kl_softmax, mc_estimates,
                              mutual_information_softmax, softmax_cross_entropy)
from vaeas.metrics import bernoulli_log_likelihood
from vaeas.models import VAE, make_labels
from vaeas.training import RunSpec, backward, binarize, eval_binarized, loss_terms

COLUMNS = ("name", "epoch", "steps", "seconds", "load", "nll_train", "kl_train", "mi", "md", "sc",
           "mi_mc", "md_mc", "log_n", "nll_test_iw64", "au")


@torch.no_grad()
def monitor(model: VAE, x: torch.Tensor, labels, n_eff: int, test_x: torch.Tensor, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    mus, logvars, recon, ce, ent = [], [], [], [], []
    for i in range(0, x.shape[0], 1000):
        xb = x[i:i + 1000]
        mu, logvar = model.encode(xb)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        recon.append(-bernoulli_log_likelihood(model.decode(z), xb))
        mus.append(mu), logvars.append(logvar)
        if model.classifier is not None:
            logits = model.classify(z)
            ce.append(softmax_cross_entropy(logits, labels[i:i + 1000]))
            ent.append(logits[0])
    mu, logvar = torch.cat(mus), torch.cat(logvars)
    kl = kl_standard_normal(mu, logvar)
    row = {"nll_train": torch.cat(recon).mean().item(), "kl_train": kl.mean().item(),
           "log_n": math.log(n_eff)}
    if model.classifier is not None:
        sc = torch.cat(ce)
        row["mi"] = mutual_information_softmax(torch.cat(ent), n_eff).item()
        row["md"] = marginal_kl_softmax(kl, sc, n_eff).item()
        row["sc"] = sc.mean().item()
    mc = mc_estimates(mu, logvar, gen)
    row["mi_mc"], row["md_mc"] = float(mc["mi"]), float(mc["md"])
    row["au"] = int((mu.var(0) >= 0.01).sum().item())
    from vaeas.metrics import iw_nll
    nll = iw_nll(model.encode, lambda xx, z: bernoulli_log_likelihood(model.decode(z), xx),
                 test_x, 64, 64, gen)
    row["nll_test_iw64"] = nll.mean().item()
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out", default="docs/regime/runs.csv")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--n", type=int, default=1000, help="seeded subset of the training set (0 = all)")
    p.add_argument("--objective", default="vaeas", choices=("vae", "vaeas"))
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--labels", type=int, default=0, help="V shared labels (0 = one per sample)")
    p.add_argument("--init", default="torch", choices=("torch", "glorot"))
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--cls-lr", type=float, default=1e-3)
    p.add_argument("--cls-steps", type=int, default=0, help="extra ω-only updates per VAE update")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--activation", default="tanh")
    p.add_argument("--dec-layers", type=int, default=5)
    p.add_argument("--latent", type=int, default=40)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default="data")
    a = p.parse_args(argv)

    torch.manual_seed(a.seed)
    ds = data_mod.load(a.dataset, a.data_root)
    train_x = ds.train_x
    if a.n:
        idx = torch.randperm(train_x.shape[0], generator=torch.Generator().manual_seed(12345))[:a.n]
        train_x = train_x[idx.sort().values]
    n = train_x.shape[0]
    eval_x = eval_binarized(train_x, 20191001)
    test_x = eval_binarized(ds.test_x[:500], 20191002)
    mcfg = ModelConfig(latent_dim=a.latent, hidden_units=a.hidden, decoder_layers=a.dec_layers,
                       activation=a.activation, init=a.init)
    spec = RunSpec(a.dataset, a.objective, {"alpha": a.alpha, "beta": a.beta} if a.objective == "vaeas" else {}, a.seed)
    label_spec = labels = None
    if a.objective == "vaeas":
        lcfg = LabelConfig(scheme="shared", classes=a.labels) if a.labels else LabelConfig()
        label_spec = make_labels(n, lcfg)
        labels = label_spec.labels
    model = VAE(train_x.shape[1], mcfg, **({} if label_spec is None else
                                            {"classes": label_spec.classes, "heads": 1}))
    opt_vae = torch.optim.Adam(model.vae_parameters(), lr=a.lr)
    opt_cls = torch.optim.Adam(model.classifier_parameters(), lr=a.cls_lr) if label_spec else None
    gen = torch.Generator().manual_seed(a.seed)
    n_eff = label_spec.effective_count if label_spec else n
    steps = math.ceil(n / a.batch)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    t_train, total_steps = 0.0, 0
    with open(out, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        for epoch in range(a.epochs + 1):
            if epoch % a.every == 0 or epoch == a.epochs:
                row = {"name": a.name, "epoch": epoch, "steps": total_steps, "seconds": round(t_train, 1),
                       "load": round(os.getloadavg()[0], 2), **monitor(model, eval_x, labels, n_eff, test_x, 7)}
                w.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
                fh.flush()
                print(" ".join(f"{k}={row.get(k, '')}" for k in COLUMNS if k in row), flush=True)
            if epoch == a.epochs:
                break
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen)
            for s in range(steps):
                idx = perm[s * a.batch:(s + 1) * a.batch]
                x = binarize(train_x[idx], gen)
                terms = loss_terms(model, x, None if labels is None else labels[idx], spec, label_spec, gen)
                opt_vae.zero_grad(set_to_none=True)
                if opt_cls:
                    opt_cls.zero_grad(set_to_none=True)
                backward(terms, model.vae_parameters(), model.classifier_parameters())
                opt_vae.step()
                if opt_cls:
                    opt_cls.step()
                    for _ in range(a.cls_steps):      # extra ω updates on fresh z of the same batch
                        with torch.no_grad():
                            mu, logvar = model.encode(x)
                            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
                        opt_cls.zero_grad(set_to_none=True)
                        softmax_cross_entropy(model.classify(z), labels[idx]).mean().backward()
                        opt_cls.step()
                total_steps += 1
            t_train += time.perf_counter() - t0


if __name__ == "__main__":
    main()
