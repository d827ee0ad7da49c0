"""Evaluate a trained model: every column of the paper's Tables 1–3, and the Monte Carlo
estimates of Figure 2.

Drivers only: they run the networks to get tensors (μ, log σ², z, logits) in batches and hand
them to the pure functions of :mod:`vaeas.estimators` and :mod:`vaeas.metrics`.

* NLL_test: importance-weighted NLL with k samples (Burda et al. 2015) on the test set.
* KL_test, KL_train: mean analytic KL(q(z|x) || p(z)).
* AU: active units on the test set, Cov_x(E_q[z_d]) ≥ ε (§5.3); AU_train on the training set.
* NLL_train: the reconstruction term E_q[−log p(x|z)] on the training set (one z per sample).
* MI, MD, SC: softmax estimates (eqs. 5, 9, 10, 8) on the training set, in the same pass and
  with the same z as NLL_train and KL_train, so MD = KL_train − log N + SC holds for the
  reported numbers exactly (MI's N is the number of labels in use, N_eff, with shared labels; MD's is
  ``labels.md_constant``, docs/decisions.md D5).

* best_*: the same columns for the model of the best validation epoch, when training kept one
  (``training.validate_every``; :func:`at_best_epoch`).

All evaluation uses the fixed seeded binarization (``evaluation.binarize_seed``).
"""

from __future__ import annotations

import copy
import math
import time

import torch

from . import data as data_mod
from .experiments import check_fits_dataset
from .estimators import kl_standard_normal, mc_estimates, mc_estimates_subsets
from .metrics import active_units
from .models import VAE, Classifier, init_glorot, make_labels
from .refit import marginal_kl_gap, refit
from .passes import BATCH, IW_ROWS, iw_nll_dataset, posteriors, training_set_pass  # noqa: F401  (re-exported)
from .runtime import eval_binarized, resolve_device, tune_allocator
from .training.checkpoint import load_model


def evaluate(model: VAE, meta: dict, data_root: str | None = None, progress: bool = True) -> dict:
    """All Table 2 columns for one trained model, as a flat dict (plus provenance)."""
    cfg, spec = meta["cfg"], meta["spec"]
    ev = cfg.evaluation
    device = next(model.parameters()).device
    tune_allocator()
    dataset = data_mod.load(spec.dataset, data_mod.rooted(cfg.data, data_root))
    t0 = time.perf_counter()
    train_x = eval_binarized(dataset.train_x, ev.binarize_seed).to(device)
    test_x = eval_binarized(dataset.test_x, ev.binarize_seed + 1).to(device)
    n_train = train_x.shape[0]
    labels, n_eff, md_count = None, n_train, n_train
    if model.classifier is not None:
        label_spec = make_labels(n_train, cfg.labels)
        labels, n_eff = label_spec.labels.to(device), label_spec.effective_count
        md_count = label_spec.marginal_count
    generator = torch.Generator(device=device).manual_seed(ev.binarize_seed + 2)
    row = training_set_pass(model, train_x, labels, n_eff, generator, md_count=md_count)
    row.update(classifier_check(model, cfg, train_x, labels, n_eff, md_count))

    mu_test, logvar_test = posteriors(model, test_x)
    row["kl_test"] = kl_standard_normal(mu_test, logvar_test).mean().item()
    row["au"] = int(active_units(mu_test, ev.au_threshold))
    iw_x = test_x if ev.iw_max_examples == 0 else test_x[:ev.iw_max_examples]
    row["nll_test"] = iw_nll_dataset(model, iw_x, ev.iw_samples, ev.iw_chunk, generator, progress).mean().item()
    row.update(_both_constants(row, "md", n_train, n_eff, md_count))
    row["au_train"] = int(active_units(posteriors(model, train_x)[0], ev.au_threshold))
    if meta.get("best") is not None:
        row.update(at_best_epoch(model, meta["best"], train_x, labels, iw_x, test_x, n_eff, ev))
    row.update({
        "dataset": spec.dataset, "objective": spec.objective, **spec.params, "seed": spec.seed, "n_train": n_train, "n_test": test_x.shape[0], "n_iw": iw_x.shape[0],
        "iw_samples": ev.iw_samples, "label_count": n_eff, "log_n": math.log(n_train),
        "decoder_layers": cfg.model.decoder_layers, "seconds": round(time.perf_counter() - t0, 2),
    })
    return row


#: The columns :func:`at_best_epoch` adds (``training.validate_every`` on): the epoch of the lowest
#: validation IW-NLL, that IW-NLL, and the test and training columns of the model kept there.
BEST_COLUMNS = ("best_epoch", "best_valid_nll", "best_nll_test", "best_nll_train", "best_kl_test", "best_kl_train",
                "best_au", "best_au_train")


def at_best_epoch(model: VAE, best: dict, train_x: torch.Tensor, labels: torch.Tensor | None, iw_x: torch.Tensor,
                  test_x: torch.Tensor, n_eff: int, ev) -> dict:
    """The columns of the early-stopped model (:mod:`vaeas.training.validation`), each computed as
    the last epoch's is, with the same seeds (common random numbers: the difference of the two is
    the models', not the draws')."""
    at = copy.deepcopy(model)
    at.load_state_dict(best["model"])
    generator = torch.Generator(device=train_x.device).manual_seed(ev.binarize_seed + 2)
    train_row = training_set_pass(at, train_x, labels, n_eff, generator)
    mu_test, logvar_test = posteriors(at, test_x)
    return {"best_epoch": int(best["epoch"]), "best_valid_nll": float(best["valid_nll"]),
            "best_nll_test": iw_nll_dataset(at, iw_x, ev.iw_samples, ev.iw_chunk, generator).mean().item(),
            "best_nll_train": train_row["nll_train"], "best_kl_test": kl_standard_normal(mu_test, logvar_test).mean().item(),
            "best_kl_train": train_row["kl_train"], "best_au": int(active_units(mu_test, ev.au_threshold)),
            "best_au_train": int(active_units(posteriors(at, train_x)[0], ev.au_threshold))}


def _both_constants(row: dict, key: str, n: int, n_eff: int, md_count: int) -> dict:
    """With shared labels (N_eff < N): ``<key>_log_n`` and ``<key>_log_neff``, eq. 10 with each
    candidate constant (docs/decisions.md D5), whichever one ``labels.md_constant`` reports as
    ``<key>``. Empty with one label per sample (the two coincide) or without ``key``."""
    if key not in row or n_eff == n:
        return {}
    with_n = row[key] + math.log(md_count) - math.log(n)
    return {f"{key}_log_n": with_n, f"{key}_log_neff": with_n + marginal_kl_gap(n, n_eff)}


def classifier_check(model: VAE, cfg, train_x: torch.Tensor, labels: torch.Tensor | None,
                     n_eff: int, md_count: int | None = None) -> dict:
    """Beside the training-time softmax estimates: the Monte Carlo MI / MD over all N training
    posteriors (S = N, one z each) — the ground truth they estimate — and, when
    ``evaluation.refit_epochs`` > 0, the estimates of a classifier refit on the frozen final
    posteriors (:mod:`vaeas.refit`). MD subtracts log ``md_count`` (``labels.md_constant``, D5).
    Empty for the plain VAE."""
    if model.classifier is None:
        return {}
    ev = cfg.evaluation
    mu, logvar = posteriors(model, train_x)
    mc = mc_estimates(mu, logvar, torch.Generator(device=train_x.device).manual_seed(ev.binarize_seed + 5),
                      chunk=ev.mc_chunk)
    n = train_x.shape[0]
    out = {"mi_mc": mc["mi"], "md_mc": mc["md"]}
    if not ev.refit_epochs:
        return out
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ev.binarize_seed + 6)
        fresh = Classifier(cfg.model, model.classifier.classes, model.classifier.heads)
        if cfg.model.init == "glorot":
            init_glorot(fresh)
    md_count = md_count or n_eff
    res = refit(model.classifier, fresh, mu, logvar, labels, n_eff, from_trained=ev.refit_from == "trained",
                max_epochs=ev.refit_epochs, lr=ev.refit_lr, batch=ev.refit_batch, seed=ev.binarize_seed + 7,
                md_count=md_count)
    out.update({"refit_mi": res.mi, "refit_md": res.md, "refit_sc": res.sc,
                "refit_epochs": res.epochs, "refit_converged": res.converged})
    out.update(_both_constants(out, "refit_md", n, n_eff, md_count))
    return out


def monte_carlo(model: VAE, meta: dict, data_root: str | None = None) -> list[dict]:
    """Figure 2's Monte Carlo MI and MD on the training set for every S of ``mc_sizes``."""
    cfg, spec = meta["cfg"], meta["spec"]
    ev = cfg.evaluation
    device = next(model.parameters()).device
    tune_allocator()
    dataset = data_mod.load(spec.dataset, data_mod.rooted(cfg.data, data_root))
    train_x = eval_binarized(dataset.train_x, ev.binarize_seed).to(device)
    check_fits_dataset(cfg, spec.dataset, monte_carlo=True, source="", n=train_x.shape[0], labels=False)
    mu, logvar = posteriors(model, train_x)
    generator = torch.Generator(device=device).manual_seed(ev.binarize_seed + 3)
    rows = []
    for size in ev.mc_sizes:
        res = mc_estimates_subsets(mu, logvar, size, ev.mc_repeats, generator, chunk=ev.mc_chunk)
        for r, (mi, md) in enumerate(zip(res["mis"], res["mds"])):
            rows.append({"dataset": spec.dataset, **spec.params, "seed": spec.seed,
                         "size": size, "repeat": r, "mi": float(mi), "md": float(md)})
    return rows


def load_for_eval(path: str, device: str = "auto") -> tuple[VAE, dict]:
    return load_model(path, resolve_device(device))
