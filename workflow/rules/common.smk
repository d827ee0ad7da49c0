# Shared setup: validate params.yaml once (one-line error naming the key, before any job),
# and ask the package for the grid and every path. No pipeline logic lives here.
import sys

from vaeas import gpu_driver_present
from vaeas import contract as CONTRACT
from vaeas import experiments as EXPS
from vaeas import finished as FINISHED
from vaeas import pipeline as PIPE
from vaeas.config import profile_config
from vaeas.errors import VaeasError

PARAMS = "params.yaml"


def _dotted(key, value):
    """`key` extended down to the first leaf of `value` ('training' -> 'training.epochs')."""
    while isinstance(value, dict) and value:
        sub = next(iter(value))
        key, value = f"{key}.{sub}", value[sub]
    return key


def _profile_from_command_line(given, params_raw):
    """The profile in force; a one-line error naming the key for anything else on the command line.

    The workflow reads every value from params.yaml (PARAMS_RAW, parsed and schema-validated by
    the Snakefile); Snakemake's `config` would silently take --config keys that nothing reads, so
    only `profile` is accepted there, and an empty `profile=` (Snakemake makes it None) is refused."""
    for key in sorted(given, key=str):
        if key != "profile":
            raise VaeasError(f"--config {_dotted(key, given[key])}: only 'profile' can be set with --config or "
                             f"--configfile; every other value comes from {PARAMS} (edit it, or add a profile under 'profiles')")
    if "profile" not in given:
        return str(params_raw.get("profile", "") or "")
    if given["profile"] is None or given["profile"] == "":
        defined = ", ".join(sorted(params_raw.get("profiles", {}) or {})) or "none"
        raise VaeasError(f"--config profile: empty value; name a profile (defined: {defined})")
    return str(given["profile"])


try:
    # What the command line gave (--config and --configfile), before Snakemake merged it into `config`.
    PROFILE = _profile_from_command_line(dict(workflow.config_settings.overwrite_config), PARAMS_RAW)
    CFG = profile_config(PARAMS_RAW, profile=PROFILE, source=PARAMS)
    EXPS.validate_grid(CFG, PARAMS)      # the rules that need N (V < N, mc_sizes <= N) and Figures 4-5's runs
    EXPS.validate(CFG)
except VaeasError as exc:
    sys.exit(f"vaeas: error: {exc}")

# The contract (docs/decisions.md, D25): every run's resolved config.json, rewritten only when
# its content changes. Rules read the groups of it their outputs depend on as `params`, so a rerun
# follows the content of the resolved configuration, never the clock of params.yaml.
CONTRACT.write_run_configs(CFG)
# Snakemake records the params of the outputs it made itself only: a model trained by hand, by DVC,
# or pulled, and trained with another configuration than its config.json, is set aside here
# (renamed model.pt.stale, nothing deleted) so that it is trained again (vaeas.finished).
if workflow.is_main_process:
    try:
        for _line in FINISHED.set_aside_stale(CFG):
            print(_line, file=sys.stderr)
    except (VaeasError, OSError) as exc:
        sys.exit(f"vaeas: error: {exc}")
# A processed file built before and now missing or damaged (its recorded sha256) is rebuilt here,
# byte for byte, before any job is scheduled; jobs read it as ancient(): its bytes, not its clock.
from vaeas.data import repair_processed

for _dataset in PIPE.datasets(CFG):
    repair_processed(_dataset, CFG.data)
CODE = {kind: PIPE.code_digest(kind) for kind in PIPE.CODE}


def run_config(wildcards):
    return EXPS.run_file_pattern(CONTRACT.CONFIG_FILE).format(**dict(wildcards.items()))


def contract_part(keys):
    return lambda wc: CONTRACT.part(run_config(wc), keys)


SEEDS = EXPS.seeds(CFG)
RUNS = {(r.experiment, r.name): r for r in EXPS.runs(CFG)}


def _cuda() -> bool:
    if CFG.training.device == "cpu":
        return False
    # No GPU driver on this host: answer without importing torch, which takes seconds on every
    # parse of this file, and each Slurm job parses it twice.
    if not gpu_driver_present():
        return False
    import torch

    return torch.cuda.is_available()


GPU = 1 if _cuda() else 0


def run_of(wildcards):
    return RUNS[(wildcards.experiment, wildcards.run)]


ALL_TARGETS = [f"{PIPE.results_dir(CFG)}/REPORT.md"]


wildcard_constraints:
    profile=PROFILE,
    experiment="|".join(sorted({e for e, _ in RUNS})) or "none",
    seed=r"\d+",
