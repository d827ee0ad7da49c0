"""vaeas.objectives: the registry, what each objective declares, the checks of their
hyper-parameters (issue 17, items 1, 6), and β-VAE (item 7).

The algebra "What does VAE-AS add?" rests on is checked on real batches: with eq. 10's constant
log N_eff, VAE-AS's regulariser α·MI + β·MD is β·KL + (α − β)·MI + β·(SC − H), so its loss is
β-VAE's plus (α − β)·MI + β·(SC − H), on the same z.
"""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from vaeas import objectives
from vaeas.config import LabelConfig, ModelConfig
from vaeas.errors import VaeasError
from vaeas.experiments import load_config, runs
from vaeas.models import VAE, make_labels
from vaeas.run import RunSpec
from vaeas.training import loss_terms, train

from test_training import digits_root, small_config  # noqa: F401  (the module's fixture)
from tolerance import ops_bound, sum_bound


def test_the_registry_names_every_module_and_each_declares_itself():
    assert objectives.names()[:2] == ("vae", "vaeas")          # the paper's two methods first
    for o in objectives.REGISTRY.values():
        assert o.label and o.summary and set(o.schema()) == set(o.param_names())
        assert all(col in objectives.LOGGED for col in o.curves)
    assert objectives.get("vaeas").needs_classifier and not objectives.get("vae").needs_classifier
    with pytest.raises(VaeasError, match=r"^--objective: unknown objective 'elbo' \(choose from: vae, vaeas"):
        objectives.get("elbo", "--objective")


def test_hyper_parameters_are_checked_and_named_where_they_came_from():
    vaeas = objectives.get("vaeas")
    assert vaeas.make_params({}).beta == 1.0 and vaeas.make_params({"beta": 0.2}).beta == 0.2
    with pytest.raises(VaeasError, match=r"^--gamma: not a hyper-parameter of objective 'vaeas' \(its hyper-parameters: alpha, beta\)$"):
        vaeas.make_params({"gamma": 1.0}, "--{}")
    with pytest.raises(VaeasError, match=r"^p.yaml: experiments.t.runs.x.beta must be a finite number >= 0, got -1$"):
        vaeas.make_params({"beta": -1}, "p.yaml: experiments.t.runs.x.{}")
    with pytest.raises(VaeasError, match=r"^beta must be a finite number >= 0, got True$"):
        vaeas.make_params({"beta": True})
    with pytest.raises(VaeasError, match=r"not a hyper-parameter of objective 'vae' \(its hyper-parameters: none\)"):
        RunSpec("digits", "vae", {"beta": 1.0})


def _grid(tmp_path, runs_entry: dict) -> str:
    params = {"profile": "t", "data": {"root": "data"}, "experiments": {"seeds": [0], "table2": {
        "dataset": "digits", "runs": runs_entry}}, "profiles": {"t": {}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return str(path)


def test_a_run_is_one_params_yaml_entry_checked_against_its_objective(tmp_path):
    cfg = load_config(_grid(tmp_path, {"a1_b0p2": {"beta": 0.2}}))
    (run,) = runs(cfg)
    assert (run.objective, run.params) == ("vaeas", {"alpha": 1.0, "beta": 0.2})     # defaults filled in
    assert run.spec(0).run_id == "table2.a1_b0p2.seed0"
    with pytest.raises(VaeasError, match=r"params.yaml: unknown key 'experiments.table2.runs.bad.beta' \(allowed here: objective, set\)"):
        load_config(_grid(tmp_path, {"bad": {"objective": "vae", "beta": 1.0}}))
    with pytest.raises(VaeasError, match=r"params.yaml: experiments.table2.runs.bad.objective: unknown objective 'elbo'"):
        load_config(_grid(tmp_path, {"bad": {"objective": "elbo"}}))
    with pytest.raises(VaeasError, match=r"params.yaml: experiments.table2.runs.bad.alpha: -1.0 is less than the minimum of 0"):
        load_config(_grid(tmp_path, {"bad": {"alpha": -1.0}}))


def test_a_beta_vae_run_is_one_params_yaml_entry(tmp_path):
    cfg = load_config(_grid(tmp_path, {"bvae_b0p2": {"objective": "beta_vae", "beta": 0.2}}))
    (run,) = runs(cfg)
    assert (run.objective, run.params) == ("beta_vae", {"beta": 0.2})
    assert not objectives.get("beta_vae").needs_classifier
    with pytest.raises(VaeasError, match=r"params.yaml: unknown key 'experiments.table2.runs.bad.alpha' \(allowed here: beta, objective, set\)"):
        load_config(_grid(tmp_path, {"bad": {"objective": "beta_vae", "alpha": 1.0}}))


def _batch(classes=0, heads=1):
    torch.manual_seed(0)
    labels = make_labels(200, LabelConfig(md_constant="n_eff") if classes == 0 else
                         LabelConfig(scheme="multihead" if heads > 1 else "shared", classes=classes, heads=heads, md_constant="n_eff"))
    model = VAE(12, ModelConfig(latent_dim=4, hidden_units=16, encoder_layers=1, decoder_layers=1, classifier_layers=1),
                classes=labels.classes, heads=labels.heads)
    return model, torch.bernoulli(torch.rand(200, 12)), labels


@torch.no_grad()
@pytest.mark.parametrize("beta", [0.0, 0.2, 1.0, 5.0])
def test_beta_vae_loss_is_recon_plus_beta_kl(beta):
    model, x, labels = _batch()
    t = loss_terms(model, x, None, RunSpec("digits", "beta_vae", {"beta": beta}), None, torch.Generator().manual_seed(1))
    # one float32 multiply and one add of the two terms
    assert abs(float(t.loss - (t.recon + beta * t.kl))) <= ops_bound(torch.float32, t.loss, t.recon, beta * t.kl, safety=2)
    assert all(math.isnan(float(getattr(t, k))) for k in ("mi", "md", "sc", "entropy"))


@torch.no_grad()
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.2), (1.0, 5.0), (0.5, 1.0), (3.0, 0.0)])
@pytest.mark.parametrize("classes,heads", [(0, 1), (15, 1), (15, 2)])
def test_vaeas_is_beta_vae_plus_alpha_minus_beta_mi_plus_beta_sc_minus_h(alpha, beta, classes, heads):
    """α·MI + β·MD = β·KL + (α − β)·MI + β·(SC − H) with MI = log N_eff − H and MD = KL −
    log N_eff + SC: the loss of VAE-AS(α, β) is β-VAE(β)'s plus those terms, on the same z (the
    same generator draws the same ε). At α = 1 and SC ≈ H it is β-VAE plus (1 − β)·MI."""
    model, x, labels = _batch(classes, heads)
    vaeas = loss_terms(model, x, labels.labels, RunSpec("digits", "vaeas", {"alpha": alpha, "beta": beta}), labels,
                       torch.Generator().manual_seed(1))
    bvae = loss_terms(model, x, None, RunSpec("digits", "beta_vae", {"beta": beta}), None, torch.Generator().manual_seed(1))
    assert torch.equal(vaeas.recon, bvae.recon) and torch.equal(vaeas.kl, bvae.kl)          # the same z
    rhs = bvae.loss + (alpha - beta) * vaeas.mi + beta * (vaeas.sc - vaeas.entropy)
    log_n = math.log(labels.effective_count)
    tol = ops_bound(torch.float32, vaeas.loss, vaeas.recon, beta * vaeas.kl, alpha * vaeas.mi, beta * vaeas.sc,
                    beta * vaeas.entropy, (alpha + beta) * log_n, safety=4)
    assert abs(float(vaeas.loss - rhs)) <= tol


def test_beta_vae_at_beta_one_trains_the_vae_bit_for_bit(digits_root, tmp_path):  # noqa: F811
    """β = 1 is the ELBO exactly (1.0·KL rounds to KL), so the two train the same weights."""
    cfg = small_config(digits_root, epochs=2)
    a = train(cfg, RunSpec("digits", "vae", seed=3), tmp_path / "vae.pt", progress=False)
    b = train(cfg, RunSpec("digits", "beta_vae", {"beta": 1.0}, seed=3), tmp_path / "bvae.pt", progress=False)
    sa, sb = torch.load(a, weights_only=False)["model"], torch.load(b, weights_only=False)["model"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    c = train(cfg, RunSpec("digits", "beta_vae", {"beta": 0.2}, seed=3), tmp_path / "b02.pt", progress=False)
    assert not torch.equal(torch.load(c, weights_only=False)["model"]["encoder.net.0.weight"], sa["encoder.net.0.weight"])


# --------------------------------------------------------------------------------------------
# Free bits and KL annealing (issue "What does VAE-AS add?": the baselines of Table B)

def test_free_bits_at_lambda_zero_is_the_elbo_up_to_the_order_of_the_sums():
    """max(0, mean_b KL_bd) = mean_b KL_bd (each KL_bd ≥ 0): Σ_d mean_b KL_bd and mean_b Σ_d KL_bd
    are the same B·D non-negative terms summed in two orders, each within γ_{B+D} of their total."""
    model, x, _ = _batch()
    with torch.no_grad():
        fb = loss_terms(model, x, None, RunSpec("digits", "free_bits", {"lam": 0.0}), None, torch.Generator().manual_seed(1))
        vae = loss_terms(model, x, None, RunSpec("digits", "vae"), None, torch.Generator().manual_seed(1))
    assert torch.equal(fb.recon, vae.recon) and torch.equal(fb.kl, vae.kl)            # the same z, the true KL logged
    b, d = x.shape[0], 4
    tol = 2 * sum_bound(b + d + 2, float(vae.kl), torch.float32) + ops_bound(torch.float32, fb.loss, vae.loss)
    assert 0 < float(vae.kl) and abs(float(fb.loss - vae.loss)) <= tol


def test_free_bits_above_every_dimensions_kl_is_recon_plus_d_lambda_and_gives_the_kl_no_gradient():
    """With λ above every dimension's batch-mean KL, the floor holds for all D = 4 dimensions: the
    loss is recon + D·λ, and the encoder's gradient is the reconstruction's alone (clamp passes
    no gradient below its floor), bit for bit."""
    model, x, _ = _batch()
    with torch.no_grad():
        mu, logvar = model.encode(x)
        from vaeas.estimators import kl_standard_normal_per_dimension
        lam = float(kl_standard_normal_per_dimension(mu, logvar).mean(0).max()) * 2 + 1.0
    spec = RunSpec("digits", "free_bits", {"lam": lam})
    t = loss_terms(model, x, None, spec, None, torch.Generator().manual_seed(1))
    assert abs(float((t.loss - (t.recon + 4 * lam)).detach())) <= ops_bound(torch.float32, t.loss.detach(), 4 * lam, safety=4)
    enc = list(model.encoder.parameters())
    g_loss = torch.autograd.grad(t.loss, enc, retain_graph=True)
    g_recon = torch.autograd.grad(t.recon, enc)
    assert all(torch.equal(a, b) for a, b in zip(g_loss, g_recon))


@pytest.mark.parametrize("warmup,progress,weight", [(0, 0.0, 1.0), (0, 7.5, 1.0), (10, 0.0, 0.0), (10, 2.5, 0.25),
                                                     (10, 10.0, 1.0), (10, 37.0, 1.0), (4, 3.9, 0.975)])
def test_kl_annealing_weight_rises_linearly_to_one_over_warmup_epochs(warmup, progress, weight):
    from vaeas.objectives.kl_annealing import Params, kl_weight

    # one Python float division (progress / warmup, clamped): IEEE double, correctly rounded on any CPU,
    # so within one ulp of the exact value (≤ 1.1e-16 for weights ≤ 1)
    assert kl_weight(Params(warmup=warmup), progress) == pytest.approx(weight, abs=1e-15)
    model, x, _ = _batch()
    with torch.no_grad():
        t = loss_terms(model, x, None, RunSpec("digits", "kl_annealing", {"warmup": warmup}), None,
                       torch.Generator().manual_seed(1), progress)
    w = kl_weight(Params(warmup=warmup), progress)
    assert abs(float(t.loss - (t.recon + w * t.kl))) <= ops_bound(torch.float32, t.loss, t.recon, w * t.kl, safety=2)


def test_the_loop_passes_the_epochs_completed_before_each_step(digits_root, tmp_path, monkeypatch):  # noqa: F811
    """progress = epoch + step / steps: 0 at the first step, and 10 steps an epoch for digits'
    1,247 images in batches of 128."""
    import vaeas.training.loop as loop

    seen, real = [], loop.loss_terms
    monkeypatch.setattr(loop, "loss_terms", lambda *a: seen.append(a[-1]) or real(*a))
    train(small_config(digits_root, epochs=2), RunSpec("digits", "kl_annealing", {"warmup": 3}, seed=0),
          tmp_path / "m.pt", progress=False)
    assert seen == [e + s / 10 for e in range(2) for s in range(10)]


def test_kl_annealing_without_warmup_trains_the_vae_bit_for_bit(digits_root, tmp_path):  # noqa: F811
    cfg = small_config(digits_root, epochs=2)
    a = train(cfg, RunSpec("digits", "vae", seed=3), tmp_path / "vae.pt", progress=False)
    b = train(cfg, RunSpec("digits", "kl_annealing", {"warmup": 0}, seed=3), tmp_path / "ann.pt", progress=False)
    sa, sb = torch.load(a, weights_only=False)["model"], torch.load(b, weights_only=False)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_warmup_is_an_integer_number_of_epochs():
    with pytest.raises(VaeasError) as err:
        RunSpec("digits", "kl_annealing", {"warmup": 2.5}, where="--{}")
    assert str(err.value) == "--warmup must be an integer >= 0, got 2.5"


@pytest.mark.parametrize("profile", [None, "ci", "mnist-cpu", "paper"])
def test_table_b_pairs_its_vaeas_and_vae_runs_with_the_papers_tables_in_every_profile(profile):
    """Table B compares methods on paired seeds: its VAE-AS and VAE rows must be the very models of
    Tables 2 / 3 (same_as), not retrained under another setting (a profile that changes Table 3's
    epochs must change Table B's Omniglot too), and every baseline trains on the same data."""
    cfg = load_config("params.yaml", profile=profile)
    grid = runs(cfg)
    table = {"baselines_mnist": "table2", "baselines_omniglot": "table3"}
    checked = 0
    for run in grid:
        if run.experiment in table and run.objective in ("vae", "vaeas"):
            assert run.same_as is not None and run.same_as.split(".")[0] in (table[run.experiment], "table1"), run.id
            checked += 1
        if run.experiment in table:
            paper = next(r for r in grid if r.experiment == table[run.experiment])
            assert run.dataset == paper.dataset, run.id
    assert checked >= (2 if profile == "ci" else 12)
