"""Where the plain VAE's KL swings come from (docs/regime.md, "the plateau").

    python -m bench.regime_drift --lr 1e-3 --init torch --decoder-layers 5 --activation tanh

Trains the plain VAE (paper architecture unless told otherwise) on the same seeded 1,000-image
MNIST subset as bench/regime.py and every 4 epochs splits the mean KL(q(z|x) || N(0, I)) into its
mean part ½·E‖μ‖² and its variance part ½·E Σ(σ² − 1 − log σ²), beside the spread of μ across
images (mean over dimensions of std_x μ_d) and the reconstruction term. A large mean part with a
small spread is the aggregate posterior drifting away from the prior without carrying information.
"""

from __future__ import annotations

import argparse

import torch

from vaeas import data
from vaeas.config import ModelConfig
from vaeas.metrics import bernoulli_log_likelihood
from vaeas.models import VAE
from vaeas.runtime import binarize, eval_binarized
from vaeas.training import RunSpec, backward, loss_terms


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--init", default="torch", choices=("torch", "glorot"))
    p.add_argument("--decoder-layers", type=int, default=5)
    p.add_argument("--activation", default="tanh")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--n", type=int, default=1000)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    ds = data.load("mnist", "data")
    idx = torch.randperm(ds.train_x.shape[0], generator=torch.Generator().manual_seed(12345))[:a.n].sort().values
    x_all = ds.train_x[idx]
    x_eval = eval_binarized(x_all, 1)
    model = VAE(784, ModelConfig(decoder_layers=a.decoder_layers, activation=a.activation, init=a.init))
    opt = torch.optim.Adam(model.vae_parameters(), lr=a.lr)
    gen, spec, batch = torch.Generator().manual_seed(0), RunSpec("mnist", "vae"), 128
    print("epoch  recon  KL_mean_part  KL_var_part  mean|mu|  spread_x(mu)  logvar_min  logvar_max")
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(a.n, generator=gen)
        for s in range(0, a.n, batch):
            x = binarize(x_all[perm[s:s + batch]], gen)
            terms = loss_terms(model, x, None, spec, None, gen)
            opt.zero_grad(set_to_none=True)
            backward(terms, model.vae_parameters(), [])
            opt.step()
        if epoch % 4 == 0:
            with torch.no_grad():
                mu, logvar = model.encode(x_eval)
                z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=gen)
                recon = -bernoulli_log_likelihood(model.decode(z), x_eval).mean()
                kl_mean = 0.5 * mu.pow(2).sum(1).mean()
                kl_var = 0.5 * (logvar.exp() - 1 - logvar).sum(1).mean()
            print(f"{epoch:5d} {recon:6.1f} {kl_mean:13.2f} {kl_var:12.2f} {mu.abs().mean():9.2f} "
                  f"{mu.std(0).mean():13.3f} {logvar.min():11.2f} {logvar.max():11.2f}")


if __name__ == "__main__":
    main()
