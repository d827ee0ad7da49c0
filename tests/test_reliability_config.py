"""Reliability (issue 6): a malformed params.yaml is refused in one line naming the key, before
any job starts: by ``vaeas check`` (every profile), by every command, and by Snakemake start-up.

The fuzz test mutates the repository's own params.yaml (wrong types, out-of-range values,
non-finite numbers, unknown keys, bad enums, bad run and profile names, bad overrides in
``experiments.*.set``, dangling reconstruction references, broken cross-key rules such as
V < N, undefined profiles) and checks every mutation against the CLI contract.
"""

from __future__ import annotations

import contextlib
import copy
import json
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaeas import config as config_mod
from vaeas import data
from vaeas.cli import main
from vaeas.config import DataConfig
from vaeas.experiments import check_params, load_config
from vaeas.errors import VaeasError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# A JSON round trip unshares the nodes YAML's merge key ('<<') aliases: mnist-scaling's sections
# are mnist-cpu's objects after safe_load, and a mutation must touch one profile only.
BASE = json.loads(json.dumps(yaml.safe_load((REPO / "params.yaml").read_text())))
PROFILES = sorted(BASE["profiles"])
EXPERIMENTS = ("table1", "table2", "table3", "fig2")
# profiles whose grid turns every Monte Carlo experiment off: evaluation.mc_sizes is unused there
NO_MONTE_CARLO = {name for name, prof in BASE["profiles"].items()
                  if "experiments" in prof and not prof["experiments"].get("fig2")}

# --------------------------------------------------------------------------------------------
# What each key of a section accepts, and values it must refuse

POSINT, NONNEG, UNIT, POSITIVE, TEXT, NONEMPTY, SIZES = "posint", "nonneg", "unit", "positive", "text", "nonempty", "sizes"
KINDS = {
    "data": {"root": NONEMPTY, "mirror": TEXT, "omniglot_source": ("lake", "burda"), "lock_file": NONEMPTY,
             "train_size": NONNEG},
    "model": {"latent_dim": POSINT, "hidden_units": POSINT, "encoder_layers": POSINT, "decoder_layers": POSINT,
              "classifier_layers": NONNEG, "activation": ("tanh", "relu", "softplus", "elu"),
              "init": ("glorot", "torch")},
    "labels": {"scheme": ("full", "shared", "multihead"), "classes": NONNEG, "heads": POSINT, "seed": NONNEG,
               "md_constant": ("n", "n_eff")},
    "training": {"epochs": POSINT, "batch_size": POSINT, "lr": UNIT, "classifier_lr": UNIT,
                 "device": ("auto", "cpu", "cuda"), "precision": ("fp32", "tf32", "bf16"), "flush_denormal": (True, False),
                 "threads": NONNEG,
                 "checkpoint_every": POSINT, "classifier_steps": NONNEG, "monitor_every": NONNEG,
                 "monitor_size": NONNEG, "validate_every": NONNEG, "validate_size": NONNEG, "validate_samples": POSINT},
    "evaluation": {"iw_samples": POSINT, "iw_chunk": POSINT, "iw_max_examples": NONNEG, "au_threshold": POSITIVE,
                   "binarize_seed": NONNEG, "mc_sizes": SIZES, "mc_repeats": POSINT, "mc_chunk": POSINT,
                   "refit_epochs": NONNEG, "refit_from": ("fresh", "trained"), "refit_lr": UNIT, "refit_batch": POSINT},
}
SECTION_KEYS = [(section, key) for section, keys in KINDS.items() for key in keys]

NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
NOT_A_NUMBER = st.one_of(st.text(max_size=8), st.booleans(), st.none(), st.just([]), st.just({"a": 1}))
WHOLE_FLOATS = st.integers(-5, 100).map(float)      # 3.0 is not an integer (range(3.0) fails)
FRACTIONS = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: x != int(x))


def bad_value(kind) -> st.SearchStrategy:
    """Values that a key of this kind must refuse."""
    if kind == POSINT:
        return st.one_of(st.integers(max_value=0), WHOLE_FLOATS, FRACTIONS, NON_FINITE, NOT_A_NUMBER)
    if kind == NONNEG:
        return st.one_of(st.integers(max_value=-1), WHOLE_FLOATS, FRACTIONS, NON_FINITE, NOT_A_NUMBER)
    if kind == UNIT:       # (0, 1]
        return st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True), NON_FINITE,
                         st.integers(max_value=0), st.integers(min_value=2), NOT_A_NUMBER)
    if kind == POSITIVE:   # (0, inf)
        return st.one_of(st.floats(max_value=0.0), NON_FINITE, st.integers(max_value=0), NOT_A_NUMBER)
    if kind in (TEXT, NONEMPTY):
        other = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(), st.just(["x"]))
        return st.one_of(other, st.just("")) if kind == NONEMPTY else other
    if kind == SIZES:      # a non-empty list of integers >= 2
        return st.one_of(st.just([]), st.lists(st.integers(max_value=1), min_size=1, max_size=3),
                         st.lists(WHOLE_FLOATS, min_size=1, max_size=2), st.integers(2, 9), st.just(["100"]))
    allowed = kind         # an enum
    return st.one_of(st.text(max_size=10).filter(lambda v: v not in allowed), st.integers(), st.none(),
                     st.just(list(allowed)))


# --------------------------------------------------------------------------------------------
# Mutations of the repository's params.yaml

@dataclass
class Case:
    raw: dict
    key: str            # the error message must contain this
    profile: str | None  # the profile the mutation breaks (None: the file's own 'profile')
    what: str


def fresh() -> dict:
    return copy.deepcopy(BASE)


def where(draw, allow_base=True):
    """A profile name, or None for the base sections."""
    return draw(st.sampled_from(([None] if allow_base else []) + PROFILES))


def section_node(raw: dict, profile: str | None, section: str) -> dict:
    node = raw if profile is None else raw["profiles"][profile]
    return node.setdefault(section, {})


@st.composite
def leaf_mutation(draw):
    section, key = draw(st.sampled_from(SECTION_KEYS))
    profile = where(draw)
    value = draw(bad_value(KINDS[section][key]))
    raw = fresh()
    section_node(raw, profile, section)[key] = value
    return Case(raw, f"{section}.{key}", profile or "paper", f"{section}.{key} = {value!r} in {profile or 'base'}")


@st.composite
def run_mutation(draw):
    exp = draw(st.sampled_from(EXPERIMENTS))
    run = draw(st.sampled_from(sorted(BASE["experiments"][exp]["runs"])))
    raw = fresh()
    entry = raw["experiments"][exp]["runs"]
    field = draw(st.sampled_from(["alpha", "beta", "objective", "whole"]))
    if field == "whole":
        entry[run] = draw(st.one_of(st.integers(), st.text(max_size=5), st.just([1, 2]), st.booleans()))
        key = f"experiments.{exp}.runs.{run}"
    else:
        kind = ("vae", "vaeas") if field == "objective" else None
        value = draw(bad_value(kind) if kind else st.one_of(st.floats(max_value=-1e-9), NON_FINITE, NOT_A_NUMBER,
                                                             st.integers(max_value=-1)))
        entry[run][field] = value
        key = f"experiments.{exp}.runs.{run}.{field}"
    return Case(raw, key, "paper", f"{key} mutated")


IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
FIXED_NODES = {  # mappings with a fixed set of keys: path -> allowed keys
    (): {"profile", "profiles", *config_mod.SECTIONS},
    **{(s,): set(KINDS[s]) for s in KINDS},
    ("experiments",): {"seeds", "reconstructions", *EXPERIMENTS},
    ("experiments", "reconstructions"): {"fig4", "fig5"},
    **{("experiments", e): {"dataset", "monte_carlo", "set", "runs"} for e in EXPERIMENTS},
    **{("experiments", e, "runs", r): {"objective", "alpha", "beta", "set"}
       for e in EXPERIMENTS for r in BASE["experiments"][e]["runs"]},
    **{("profiles", p): {"description", *config_mod.SECTIONS} for p in PROFILES},
    **{("profiles", p, s): set(KINDS[s]) for p in PROFILES for s in KINDS},
}


@st.composite
def unknown_key(draw):
    path = draw(st.sampled_from(sorted(FIXED_NODES, key=str)))
    name = draw(st.one_of(IDENT, st.integers(0, 999)).filter(lambda k: k not in FIXED_NODES[path]))
    raw = fresh()
    node = raw
    for part in path:
        node = node.setdefault(part, {})
    node[name] = 1
    full = ".".join(map(str, (*path, name)))
    profile = path[1] if path[:1] == ("profiles",) else "paper"
    return Case(raw, f"unknown key '{full}'", profile, f"unknown key {full}")


BAD_NAMES = st.one_of(
    st.text(min_size=0, max_size=8).filter(lambda n: not n or not all(c.isascii() and (c.isalnum() or c in "_-") for c in n)),
    st.integers(), st.booleans(), st.sampled_from(["a.b", "a b", "x/y", "run\n", "tab\t", "é"]))


@st.composite
def bad_run_name(draw):
    exp = draw(st.sampled_from(EXPERIMENTS))
    name = draw(BAD_NAMES)
    raw = fresh()
    raw["experiments"][exp]["runs"][name] = {"alpha": 1.0, "beta": 1.0}
    return Case(raw, f"experiments.{exp}.runs", "paper", f"run name {name!r} in {exp}")


@st.composite
def bad_profile_name(draw):
    raw = fresh()
    choice = draw(st.sampled_from(["undefined", "type", "key"]))
    if choice == "undefined":
        name = draw(st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True).filter(lambda n: n not in PROFILES))
        raw["profile"] = name
        return Case(raw, f"profile '{name}'", None, f"profile: {name} (undefined)")
    if choice == "type":
        raw["profile"] = draw(st.one_of(st.integers(), st.none(), st.just(["demo"]), st.just("de mo"), st.just("../x")))
        return Case(raw, "profile", None, f"profile: {raw['profile']!r}")
    name = draw(BAD_NAMES)
    raw["profiles"][name] = {"description": "x"}
    return Case(raw, "profiles", "paper", f"profile named {name!r}")


OVERRIDE_KEY_NAMES = st.sampled_from(["model", "foo.bar", "model.Latent_dim", "experiments.seeds", "model.latent_dim.x",
                                      "Model.latent_dim", "model.", ".x", "training.lr2", "profiles.demo", ""])


@st.composite
def bad_override(draw):
    exp = draw(st.sampled_from(("table1", "table2", "table3")))
    run = draw(st.sampled_from([None, *sorted(BASE["experiments"][exp]["runs"])]))
    raw = fresh()
    node = raw["experiments"][exp] if run is None else raw["experiments"][exp]["runs"][run]
    overrides = node.setdefault("set", {})
    loc = f"experiments.{exp}" + ("" if run is None else f".runs.{run}") + ".set"
    kind = draw(st.sampled_from(["name", "unknown", "value", "cross"]))
    if kind == "name":
        name = draw(OVERRIDE_KEY_NAMES)
        overrides[name] = 1
        return Case(raw, loc, "paper", f"{loc}: key {name!r}")
    if kind == "unknown":
        section = draw(st.sampled_from(sorted(KINDS)))
        name = draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda k: k not in KINDS[section]))
        overrides[f"{section}.{name}"] = 1
        return Case(raw, f"{section}.{name}", "paper", f"{loc}: unknown {section}.{name}")
    if kind == "value":
        section, key = draw(st.sampled_from(SECTION_KEYS))
        value = draw(bad_value(KINDS[section][key]))
        overrides[f"{section}.{key}"] = value
        return Case(raw, f"{section}.{key}", "paper", f"{loc}: {section}.{key} = {value!r}")
    # cross-key rules, V < N included: demo and ci train every table on digits (N = 1,247)
    rule = draw(st.sampled_from(["shared-without-classes", "v-not-below-n", "too-many-heads", "tf32-on-cpu",
                                 "full-with-classes"]))
    if rule == "shared-without-classes":
        overrides.update({"labels.scheme": "shared", "labels.classes": draw(st.integers(0, 1))})
        return Case(raw, "labels.classes", "paper", f"{loc}: shared labels, classes < 2")
    if rule == "v-not-below-n":
        overrides.update({"labels.scheme": draw(st.sampled_from(["shared", "multihead"])),
                          "labels.classes": draw(st.integers(1247, 10**6)), "labels.heads": 2})
        if overrides["labels.scheme"] == "shared":
            overrides["labels.heads"] = 1
        return Case(raw, "labels.classes", "demo", f"{loc}: V >= N on digits")
    if rule == "too-many-heads":
        classes = draw(st.integers(2, 300))
        heads = next(k for k in range(1, 20) if classes ** k >= 1247) + draw(st.integers(1, 3))
        overrides.update({"labels.scheme": "multihead", "labels.classes": classes, "labels.heads": heads})
        return Case(raw, "labels.heads", "demo", f"{loc}: {heads} heads of {classes} on digits")
    if rule == "full-with-classes":
        overrides.update({"labels.scheme": "full", "labels.classes": draw(st.integers(1, 10**5))})
        return Case(raw, "labels.classes", "paper", f"{loc}: full labels with classes")
    overrides.update({"training.device": "cpu", "training.precision": "tf32"})
    return Case(raw, "training.precision", "paper", f"{loc}: tf32 on cpu")


@st.composite
def bad_grid_rule(draw):
    """Cross-key rules in a base or profile section (not an override)."""
    profile = where(draw)
    target = profile or "demo"
    raw = fresh()
    labels = section_node(raw, profile, "labels")
    rule = draw(st.sampled_from(["shared", "full", "multihead", "mc", "seeds", "tf32"]))
    # N is 1,247 where every experiment is on digits (demo, ci), else 55,000 / 24,345 (MNIST, Omniglot)
    n = 1247 if profile in (None, "demo", "ci") else 55_000
    if rule == "shared":
        labels.update({"scheme": "shared", "classes": draw(st.one_of(st.integers(0, 1), st.integers(n, 10**7))), "heads": 1})
        return Case(raw, "labels.classes", target, f"shared, classes {labels['classes']}")
    if rule == "full":
        labels.update({"scheme": "full", "heads": draw(st.integers(2, 9))})
        return Case(raw, "labels.heads", target, "full labels with several heads")
    if rule == "multihead":
        labels.update({"scheme": "multihead", "classes": draw(st.integers(2, 10**4)), "heads": 1})
        return Case(raw, "labels.heads", target, "multihead with one head")
    if rule == "mc":   # Monte Carlo over more posteriors than the training set has
        # demo and ci set their own mc_sizes, so a base value > N shows in paper (fig2 on MNIST);
        # a profile with no Monte Carlo experiment (mnist-scaling) never uses mc_sizes: mutate the base
        if profile in NO_MONTE_CARLO:
            profile = None
        low = 55_001 if profile is None else 1248
        section_node(raw, profile, "evaluation")["mc_sizes"] = [draw(st.integers(low, 10**7))]
        if profile in ("paper", "mnist-cpu"):
            raw["profiles"][profile].setdefault("experiments", {}).setdefault("fig2", {})["dataset"] = "digits"
        return Case(raw, "evaluation.mc_sizes", profile or "paper", "mc_sizes > N")
    if rule == "seeds":
        node = raw if profile is None else raw["profiles"][profile]
        node.setdefault("experiments", {})["seeds"] = draw(st.one_of(
            st.just([]), st.just([0, 0]), st.lists(st.integers(max_value=-1), min_size=1, max_size=2),
            st.just(["0"]), st.just([1.0]), st.integers(0, 3)))
        return Case(raw, "experiments.seeds", profile or "paper", "bad seeds")
    section_node(raw, profile, "training").update({"device": "cpu", "precision": "tf32"})
    return Case(raw, "training.precision", target, "tf32 on cpu")


@st.composite
def dangling_reconstruction(draw):
    raw = fresh()
    fig = draw(st.sampled_from(["fig4", "fig5"]))
    kind = draw(st.sampled_from(["unknown", "pattern", "length", "dropped"]))
    pair = raw["experiments"]["reconstructions"][fig]
    if kind == "unknown":
        exp = draw(st.sampled_from(EXPERIMENTS))
        name = draw(IDENT.filter(lambda n: n not in BASE["experiments"][exp]["runs"]))
        pair[draw(st.integers(0, 1))] = f"{exp}.{name}"
        return Case(raw, f"experiments.reconstructions.{fig}", "paper", f"{fig} -> {exp}.{name}")
    if kind == "pattern":
        pair[draw(st.integers(0, 1))] = draw(st.one_of(st.sampled_from(["table9.a", "table2", "", "table2.a b"]), st.integers()))
        return Case(raw, f"experiments.reconstructions.{fig}", "paper", f"{fig}: bad reference")
    if kind == "length":
        raw["experiments"]["reconstructions"][fig] = draw(st.sampled_from([[], pair[:1], pair + pair[:1], "table2.vae"]))
        return Case(raw, f"experiments.reconstructions.{fig}", "paper", f"{fig}: not a pair")
    # a profile drops (null) a run that a figure shows
    profile = draw(st.sampled_from(PROFILES))
    exp, run = pair[draw(st.integers(0, 1))].split(".")
    runs = raw["profiles"][profile].setdefault("experiments", {}).setdefault(exp, {}).setdefault("runs", {})
    runs[run] = None
    return Case(raw, f"experiments.reconstructions.{fig}", profile, f"profile {profile} drops {exp}.{run}")


MUTATIONS = st.one_of(leaf_mutation(), run_mutation(), unknown_key(), bad_run_name(), bad_profile_name(),
                      bad_override(), bad_grid_rule(), dangling_reconstruction())


# --------------------------------------------------------------------------------------------
# The contract

def run_main(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vaeas: error: "), err
    return lines[0]


def test_repository_params_pass_check_in_every_profile():
    code, out, err = run_main("check", "--params", str(REPO / "params.yaml"))
    assert code == 0, err
    for name in PROFILES:
        assert run_main("check", "--params", str(REPO / "params.yaml"), "--profile", name)[0] == 0


def test_fuzzed_params_are_refused_in_one_line_naming_the_key_before_any_job(tmp_path, monkeypatch):
    """≥ 200 malformed mutations of params.yaml: `vaeas check` exits 2 with one line naming the key,
    and `vaeas train` for the broken profile refuses the same way without starting training."""
    import vaeas.training

    started = []
    monkeypatch.setattr(vaeas.training, "train", lambda *a, **k: started.append(a))
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "params.yaml"
    seen: set[str] = set()

    @settings(max_examples=260, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(MUTATIONS)
    def check(case: Case):
        started.clear()
        text = yaml.safe_dump(case.raw, sort_keys=False, allow_unicode=True)
        seen.add(text)
        params.write_text(text, encoding="utf-8")
        code, out, err = run_main("check", "--params", str(params))
        assert code == 2, f"{case.what}: accepted ({out.strip()})"
        line = error_line(err)
        assert case.key in line, f"{case.what}: error does not name {case.key!r}: {line}"
        profile = [] if case.profile is None else ["--profile", case.profile]
        code, _, err = run_main("train", "--params", str(params), *profile, "--run", "table2.vae",
                                "--out", str(tmp_path / "m.pt"), "--quiet")
        assert code == 2 and case.key in error_line(err), f"{case.what}: train did not refuse ({err.strip()})"
        assert not started, f"{case.what}: training started"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], case.what

    check()
    assert len(seen) >= 200, len(seen)


FIXED_BAD = {POSINT: [0, -3, "3", 3.0, float("nan"), True, None], NONNEG: [-1, 2.5, float("inf"), "0"],
             UNIT: [0, 1.5, -0.1, float("nan"), "0.1"], POSITIVE: [0, -1.0, float("inf")],
             TEXT: [3, ["x"], None], NONEMPTY: ["", 3], SIZES: [[], [1], [2.0], 100, [float("nan")]]}


def test_schema_and_this_test_know_the_same_keys():
    """A key added to the schema must be added to KINDS above, so the tests below cover it."""
    defs = config_mod.schema()["$defs"]
    assert {s: set(defs[s]["properties"]) for s in KINDS} == {s: set(k) for s, k in KINDS.items()}


@pytest.mark.parametrize("section,key", SECTION_KEYS)
def test_every_section_key_is_validated(tmp_path, section, key):
    """Each key of every section refuses wrong types, out-of-range, non-finite and unknown enum
    values, in the base sections and in a profile, with a one-line error naming the key."""
    kind = KINDS[section][key]
    values = FIXED_BAD.get(kind) if isinstance(kind, str) else ["nope", 3, None, list(kind)]
    for profile in (None, "ci"):
        for value in values:
            raw = fresh()
            section_node(raw, profile, section)[key] = value
            with pytest.raises(VaeasError) as info:
                check_params(write_params(tmp_path, raw))
            message = str(info.value)
            assert "\n" not in message and f"{section}.{key}" in message, (profile, value, message)


# --------------------------------------------------------------------------------------------
# Specific holes, each once (these were accepted or crashed before issue 6)

def write_params(tmp_path: Path, raw) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def refused(path: Path, *argv: str) -> str:
    code, _, err = run_main("check", "--params", str(path), *argv)
    assert code == 2, err
    return error_line(err)[len("vaeas: error: "):]


@pytest.mark.parametrize("text,message", [
    ("training:\n  epochs: 3.0\n", "training.epochs: 3.0 is not of type 'integer'"),
    ("training:\n  lr: .nan\n", "training.lr: nan is not a finite number"),
    ("evaluation:\n  au_threshold: .inf\n", "evaluation.au_threshold: inf is not a finite number"),
    ("experiments:\n  table2:\n    runs:\n      vae:\n        beta: .inf\n", "experiments.table2.runs.vae.beta: inf is not a finite number"),
    ("training:\n  epochz: 1\n  2: 3\n", "unknown key 'training.2'"),
    ("experiments:\n  table2:\n    runs:\n      7: {alpha: 1.0}\n", "experiments.table2.runs: bad key name: 7 is not of type 'string'"),
    ("experiments:\n  table2:\n    runs:\n      \"a\\n\": {alpha: 1.0}\n", "experiments.table2.runs: the key 'a\\n' contains a control character"),
    ("experiments:\n  table2:\n    set:\n      3: 1\n", "experiments.table2.set: bad key name: 3 is not of type 'string'"),
    ("a: &x [*x]\n", "a.0: a YAML alias refers to the mapping or list that contains it"),
    ("0\n", "expected a mapping at the top level, got int"),
    ("profiles:\n  \"a b\": {}\n", "profiles: bad key name: 'a b' does not match"),
])
def test_values_that_used_to_pass_or_crash_are_refused(tmp_path, text, message):
    assert message in refused(write_params(tmp_path, text))


def test_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"training:\n  epochs: \xff\xfe\n")
    assert refused(path).startswith(f"{path}: ")


@pytest.mark.parametrize("override,message", [
    ("trainig.epochs=3", "'trainig.epochs' is not SECTION.KEY"),   # a typo was silently ignored
    ("epochs=3", "'epochs' is not SECTION.KEY"),
    ("evaluation.mc_sizes=[1, 2", "the value of 'evaluation.mc_sizes' is not valid YAML"),  # was a traceback
    ("training.epochs=2.0", "training.epochs: 2.0 is not of type 'integer'"),
    ("labels.classes=5000", "labels.classes must be 0"),
    ("evaluation.mc_sizes=[5000]", "evaluation.mc_sizes: [5000] exceed the 1247 training samples of 'digits'"),
])
def test_bad_cli_overrides_name_the_key(override, message):
    assert message in refused(REPO / "params.yaml", "--profile", "demo", "--set", override)


def test_undefined_profile_on_the_command_line():
    assert "profile 'nope' is not defined under 'profiles'" in refused(REPO / "params.yaml", "--profile", "nope")


def test_a_profile_not_in_use_is_checked_too(tmp_path):
    raw = copy.deepcopy(BASE)
    raw["profiles"]["ci"].setdefault("labels", {}).update({"scheme": "shared", "classes": 5000})
    path = write_params(tmp_path, raw)
    assert load_config(path).profile == "demo"              # the profile in force is fine
    assert "labels.classes (5000) must be < the 1247 training samples of 'digits'" in refused(path)


def test_v_not_below_n_is_refused_at_start_up_not_at_train_time(tmp_path):
    """V ≥ N used to pass `vaeas check` and Snakemake start-up and fail inside the train job."""
    raw = copy.deepcopy(BASE)
    raw["experiments"]["table2"]["runs"]["a1_b1"]["set"] = {"labels.scheme": "shared", "labels.classes": 2000}
    with pytest.raises(VaeasError, match=r"\(run table2.a1_b1\): labels.classes \(2000\) must be < the 1247"):
        load_config(write_params(tmp_path, raw), profile="demo")
    assert load_config(tmp_path / "params.yaml", profile="paper").profile == "paper"   # 2000 < 55,000


def test_dangling_reconstruction_names_the_figure_key(tmp_path):
    raw = copy.deepcopy(BASE)
    raw["profiles"]["ci"]["experiments"]["table2"]["runs"]["a0p2_b1"] = None
    with pytest.raises(VaeasError) as info:
        check_params(write_params(tmp_path, raw))
    assert "experiments.reconstructions.fig4: 'table2.a0p2_b1' is not a run of profile 'ci'" in str(info.value)


def test_train_sizes_match_the_data_module(tmp_path):
    """The N used for start-up checks (data.TRAIN_SIZES) is the N that the processors produce."""
    assert data.TRAIN_SIZES["mnist"] == data.MNIST_TRAIN
    assert data.TRAIN_SIZES["omniglot"] == 1623 * data.OMNIGLOT_TRAIN_DRAWERS   # lake; burda has 24,345 too
    assert data.TRAIN_SIZES["digits"] == data.DIGITS_SPLIT[0]
    data.process("digits", DataConfig(root=str(tmp_path)))
    assert data.load("digits", str(tmp_path)).train_x.shape[0] == data.TRAIN_SIZES["digits"]
    assert set(data.TRAIN_SIZES) == set(data.DATASETS)


# --------------------------------------------------------------------------------------------
# Snakemake start-up: the same one line, before any job (a subprocess each: ~1 s)

def snakemake_project(tmp_path: Path, raw) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(REPO / "Snakefile", proj)
    shutil.copytree(REPO / "workflow", proj / "workflow")
    write_params(proj, raw)
    return proj


def _mutated(edit) -> dict:
    raw = copy.deepcopy(BASE)
    edit(raw)
    return raw


SNAKEMAKE_CASES = {
    "whole-float": (_mutated(lambda r: r["profiles"]["demo"]["training"].update(epochs=3.0)), "training.epochs"),
    "non-finite": (_mutated(lambda r: r["training"].update(lr=float("nan"))), "training.lr"),
    "unknown-key": (_mutated(lambda r: r["model"].update(layers=3)), "unknown key 'model.layers'"),
    "bad-run-name": (_mutated(lambda r: r["experiments"]["table2"]["runs"].update({"a b": None})), "experiments.table2.runs"),
    "v-not-below-n": (_mutated(lambda r: r["experiments"]["table2"]["runs"]["a1_b1"].update(
        set={"labels.scheme": "shared", "labels.classes": 1247})), "labels.classes"),
    "dangling-reconstruction": (_mutated(lambda r: r["experiments"]["reconstructions"].update(
        fig4=["table2.a0p2_b1", "table2.nope"])), "experiments.reconstructions.fig4"),
    "undefined-profile": (_mutated(lambda r: r.update(profile="nope")), "profile 'nope'"),
}


@pytest.mark.parametrize("case", sorted(SNAKEMAKE_CASES))
def test_snakemake_start_up_refuses_in_one_line_before_any_job(tmp_path, case):
    raw, key = SNAKEMAKE_CASES[case]
    proj = snakemake_project(tmp_path, raw)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([str(BIN / "snakemake"), "--cores", "1"], cwd=proj, env=env,
                         capture_output=True, text=True, timeout=120)
    output = res.stdout + res.stderr
    assert res.returncode != 0, output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("vaeas: error: "), output
    assert key in errors[0], output
    assert "Traceback" not in output and "Building DAG" not in output, output
    assert not any((proj / d).exists() for d in ("runs", "data", "logs", "results")), output


def test_snakemake_start_up_names_the_line_of_invalid_yaml(tmp_path):
    """Snakemake parses params.yaml itself (`configfile:`) before the workflow validates it, so
    invalid YAML must still end in one line naming params.yaml and the line."""
    proj = snakemake_project(tmp_path, "profile: demo\ntraining:\n  epochs: [3,\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([str(BIN / "snakemake"), "--cores", "1"], cwd=proj, env=env,
                         capture_output=True, text=True, timeout=120)
    output = res.stdout + res.stderr
    assert res.returncode != 0
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == ["vaeas: error: params.yaml: not valid YAML at line 4"], output


# --------------------------------------------------------------------------------------------
# Files that used to pass silently (issue 12)

@pytest.mark.parametrize("command", ["check", "dvc-yaml"])
@pytest.mark.parametrize("text,message", [
    ("", "{path}: is empty (expected the sections data, model, labels, training, evaluation, experiments and 'profiles')"),
    ("# only a comment\n", "{path}: is empty (expected the sections data, model, labels, training, evaluation, experiments and 'profiles')"),
    ("{}\n", "{path}: no profile selected: set 'profile:' in it or pass --profile NAME (outputs go to results/<profile>/)"),
    ("profile: p\nprofiles:\n  p: {}\n", "{path}: profile 'p' defines no runs under 'experiments' (nothing to train)"),
])
def test_empty_params_are_refused_and_nothing_is_written(tmp_path, monkeypatch, command, text, message):
    """An empty file was 'valid (profile '', 0 runs)' and dvc-yaml wrote stages for results//claims.md."""
    monkeypatch.chdir(tmp_path)
    path = write_params(tmp_path, text)
    code, out, err = run_main(command, "--params", str(path))
    assert code == 2 and out == ""
    assert error_line(err) == "vaeas: error: " + message.format(path=path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("text,message", [
    ("training:\n  epochs: 3\n  lr: 0.1\n  epochs: 5\n",
     "duplicate key 'training.epochs' at line 4 (first at line 2); YAML would silently keep only the last"),
    ("training: {epochs: 3}\nmodel: {}\ntraining: {epochs: 5}\n",
     "duplicate key 'training' at line 3 (first at line 1); YAML would silently keep only the last"),
    ("experiments:\n  table2:\n    runs:\n      vae: {objective: vae}\n      vae: {alpha: 2.0}\n",
     "duplicate key 'experiments.table2.runs.vae' at line 5 (first at line 4); YAML would silently keep only the last"),
])
def test_duplicated_keys_are_refused_naming_the_key_and_lines(tmp_path, text, message):
    path = write_params(tmp_path, text)
    assert refused(path) == f"{path}: {message}"


def test_merge_keys_may_still_override_what_they_merge(tmp_path):
    """'<<: *base' then a key of its own is YAML's way to override, not a duplicate."""
    path = write_params(tmp_path, "training: &t {epochs: 3, lr: 0.1}\nprofiles:\n  p:\n    training:\n"
                                  "      <<: *t\n      epochs: 5\n")
    assert config_mod.read_params(path)["profiles"]["p"]["training"] == {"epochs": 5, "lr": 0.1}
