# Shared setup: validate params.yaml once (one-line error naming the key, before any job),
# and ask the package for the grid and every path. No pipeline logic lives here.
import sys
from pathlib import Path

from vaeas import gpu_driver_present
from vaeas import contract as CONTRACT
from vaeas import experiments as EXPS
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

# Nothing is written while this file is read, but for files that are missing (vaeas.preflight):
# `snakemake -n` changes no file, and a second snakemake started during a run changes nothing
# before Snakemake refuses it the lock. PLAN holds every run's config.json in memory (the rules'
# params read it, so a dry run after an edit lists what a real run will do) and the models
# trained with another configuration than theirs (their jobs are forced below); `onstart`, in a
# real run only and under the lock, writes the changed config.json files, sets the stale models
# aside (model.pt.stale, nothing deleted) and rebuilds damaged processed files (D31).
from vaeas import preflight as PREFLIGHT

try:
    PLAN = PREFLIGHT.plan(CFG, PIPE.datasets(CFG), check_finished=workflow.is_main_process)
except (VaeasError, OSError) as exc:
    sys.exit(f"vaeas: error: {exc}")
DRY_RUN = bool(getattr(workflow.output_settings, "dryrun", False))
if workflow.is_main_process:
    for _line in PLAN.notes(DRY_RUN):
        print(_line, file=sys.stderr)
    if not DRY_RUN:
        for _line in PLAN.create_missing():
            print(_line, file=sys.stderr)


APPLIED = []


onstart:
    APPLIED.extend(PLAN.apply())
    for _line in APPLIED:
        print(_line, file=sys.stderr)


# Snakemake runs no onstart when it has no job: when PLAN has a write pending that no job's params
# see (an inert key, a damaged processed file), the default target forces this small job (its log
# says what was done), so that onstart runs.
PREFLIGHT_LOG = f"logs/{PROFILE}/preflight.log"


def preflight_input(wildcards):
    dag = getattr(workflow, "_dag", None)
    if workflow.is_main_process and dag is not None and PLAN.needs_a_job():
        dag.forcefiles.add(PREFLIGHT_LOG)
    return PREFLIGHT_LOG


rule preflight:
    output:
        PREFLIGHT_LOG,
    localrule: True
    run:
        lines = APPLIED + PLAN.apply()       # onstart did it; a second apply finds nothing left
        Path(output[0]).write_text("".join(f"{line}\n" for line in lines) or "nothing to do\n")


from vaeas import readers as READERS

_SOUND = set()


def checked(paths):
    """``paths`` (a reading job's inputs that other jobs wrote), after a damaged one has stopped the
    run with one line naming it and its remedy (vaeas.readers). Called from the reading rules'
    input functions, so while the DAG is built — before any job, and so before Snakemake removes
    the outputs of the job that reads the file (D43). Files this run rebuilds anyway (--forcerun
    FILE, the remedy; --forceall) are not checked: the DAG settings exist only once the DAG is
    being built, not while this file is read."""
    settings = workflow.dag_settings
    if workflow.is_main_process and settings is not None and not settings.forceall:
        rebuilt = set(map(str, settings.forcerun or ()))
        todo = [p for p in paths if p not in _SOUND and p not in rebuilt]
        try:
            READERS.refuse(READERS.damaged(todo))
        except VaeasError as exc:
            sys.exit(f"vaeas: error: {exc}")
        _SOUND.update(todo)
    return paths


CODE = {kind: PIPE.code_digest(kind) for kind in PIPE.CODE}


def run_config(wildcards):
    return EXPS.run_file_pattern(CONTRACT.CONFIG_FILE).format(**dict(wildcards.items()))


def config_input(wildcards):
    """The run's config.json, by content (ancient: params carry it). A dry run in a tree without
    it (a fresh clone) lists its jobs without it; a real run has written it already (PLAN)."""
    path = run_config(wildcards)
    return ancient(path) if Path(path).is_file() or not DRY_RUN else []


def contract_part(keys):
    """The groups `keys` of the run's config.json as this run will write it (PLAN, in memory)."""
    return lambda wc: CONTRACT.part(PLAN.content(run_config(wc)), keys)


def force_if_stale(wildcards):
    """No input: forces the job of a model trained with another configuration (PLAN.stale), which
    Snakemake would take as finished (it has no record of a model it did not make). Snakemake
    has no public way to force a job from the Snakefile; its DAG's set of forced files, read
    after every input function ran, is that way (tested with the pinned Snakemake, D31)."""
    model = EXPS.run_file_pattern(EXPS.MODEL_FILE).format(**dict(wildcards.items()))
    dag = getattr(workflow, "_dag", None)            # None outside a DAG build (e.g. --lint)
    if model in PLAN.stale and dag is not None:
        dag.forcefiles.add(model)
    return []


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
