"""The prepared GPU check of issue 19 item 4: one command, at most 8 minutes on one H100/H200.

    bash bench/gpu.sh                        # on the GPU machine; writes $OUT (or bench/out)/gpu_check.{json,md}
    python -m bench.gpu_check --dry          # CPU, tiny shapes, a few steps: the script end to end

What it measures, in order:

1. the device (name, torch, CUDA), and the load and CPU model of the host;
2. one training step (``vaeas.training``'s loop body: binarize, the objective, the routed backward,
   fused Adam) at the paper's shapes (784-500-500-40 MLP, batch 128) for VAE-AS with the paper's
   classifier sizes (55,000 MNIST, 24,345 Omniglot, 10,000 Figure 2) and for the VAE, eager and
   "graphed": ``torch.compile(mode="reduce-overhead")`` on the objective's forward (CUDA graphs
   through Inductor's cudagraph trees; tried at the largest VAE-AS shape and the VAE's, about a
   minute of compiling each); when compiling fails, the error is recorded and the eager step
   stands (the fallback ``training`` would take);
3. one Table 2 run's three seeds (VAE-AS(1, 1), N = 55,000) for a fixed number of steps, first one
   process alone, then the three seeds as three concurrent processes on the one device: the
   concurrency factor 3 · t(one) / t(three) says how much of a seed's step is launch overhead the
   device can overlap with another seed's work (the stacked-in-one-process path, ``train_many``,
   went for want of a CPU gain, docs/decisions.md D32; concurrent processes keep one Snakemake job
   per run and seed, so an edit to one run reruns that run);
4. the projection of the paper profile's whole training time (every run, every seed) from those
   measured numbers: Σ steps × the measured step of that run's shape (the VAE's decoders of
   Table 1 at the 5-layer decoder's step: an upper bound), serial, and divided by the measured
   concurrency factor; evaluation from ``bench.flops``'s FLOP count at the stated efficiency (not
   measured here).

``--dry`` (forced when no CUDA device is present) runs the same code on the CPU at N = 1,000
classes and a handful of steps, without compiling: it checks the script, not a device, and its
"projection" is labelled as such. tests/test_bench_gpu_check.py runs it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from vaeas.config import Config, LabelConfig, ModelConfig, TrainingConfig
from vaeas.models import VAE, make_labels
from vaeas.training import LOGGED, RunSpec, autocast_context, backward, binarize, make_optimizer
from vaeas.training import step as train_step

from .common import ROOT, load_average, machine, sync

PIXELS, BATCH = 784, 128
#: (objective, classes) measured at full size; the paper profile's VAE-AS runs use exactly these.
FULL_SHAPES = (("vaeas", 55_000), ("vaeas", 24_345), ("vaeas", 10_000), ("vae", 0))
DRY_SHAPES = (("vaeas", 1_000), ("vae", 0))
SEEDS = 3


def build(objective: str, classes: int, device: str, precision: str, seed: int = 0, compiled: str | None = None):
    """A step closure of ``objective`` at the paper's MLP and batch, ``classes`` classifier outputs
    (one label per training image), on ``device``; ``compiled``: a torch.compile mode for the
    objective's forward, or None for eager."""
    cfg = Config(model=ModelConfig(), labels=LabelConfig(),
                 training=TrainingConfig(batch_size=BATCH, device=device, precision=precision))
    torch.manual_seed(seed)
    if objective == "vaeas":
        label_spec = make_labels(classes, cfg.labels)
        model = VAE(PIXELS, cfg.model, classes=label_spec.classes, heads=label_spec.heads).to(device)
        spec = RunSpec("mnist", "vaeas", {"alpha": 1.0, "beta": 1.0}, seed=seed)
    else:
        label_spec, model, spec = None, VAE(PIXELS, cfg.model).to(device), RunSpec("mnist", "vae", {}, seed=seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.rand(BATCH, PIXELS, generator=gen, device=device)
    labels = None if label_spec is None else label_spec.labels[torch.arange(BATCH) % classes].to(device)
    optimizer = make_optimizer(model, cfg)
    params_vae, params_cls = model.vae_parameters(), model.classifier_parameters()
    logged = torch.empty((1, len(LOGGED)), dtype=torch.float64, device=device)
    forward = train_step.loss_terms
    if compiled:
        forward = torch.compile(train_step.loss_terms, mode=compiled, dynamic=False)

    def step():
        xb = binarize(x, gen)
        with autocast_context(torch.device(device), precision):
            terms = forward(model, xb, labels, spec, label_spec, gen)
        optimizer.zero_grad(set_to_none=True)
        backward(terms, params_vae, params_cls)
        optimizer.step()
        logged[0] = torch.stack([getattr(terms, k).detach().double() for k in LOGGED])
    return step


def time_steps(step, steps: int, warmup: int, device: str) -> float:
    """Seconds per step: the mean over ``steps`` steps after ``warmup`` (one sync at the end, as the
    training loop syncs once per epoch)."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def measure_steps(shapes, device: str, precision: str, steps: int, compile_mode: str | None) -> list[dict]:
    rows = []
    for objective, classes in shapes:
        row = {"objective": objective, "classes": classes,
               "eager_s": time_steps(build(objective, classes, device, precision), steps, 3, device)}
        if compile_mode and (objective, classes) in (shapes[0], shapes[-1]):      # the extremes: ~1 min each
            t0 = time.perf_counter()
            try:
                graphed = build(objective, classes, device, precision, compiled=compile_mode)
                time_steps(graphed, 0, 3, device)                       # the compilation
                row["compile_s"] = time.perf_counter() - t0
                row["graphed_s"] = time_steps(graphed, steps, 2, device)
            except Exception as exc:                                    # noqa: BLE001 - the fallback is the result
                row["graphed_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        row["best_s"] = min(row["eager_s"], row.get("graphed_s", math.inf))
        rows.append(row)
        print(f"  step {objective:5s} N={classes:6,d}: eager {row['eager_s'] * 1e3:7.2f} ms"
              + (f", graphed {row['graphed_s'] * 1e3:7.2f} ms (compile {row['compile_s']:.0f} s)" if "graphed_s" in row
                 else f", graphed: {row.get('graphed_error', 'not tried')}"), flush=True)
    return rows


def worker(args) -> None:
    """One seed's steps in its own process (part 3); prints its seconds as JSON."""
    if args.threads:
        torch.set_num_threads(args.threads)
    step = build("vaeas", args.classes, args.device, args.precision, seed=args.seed)
    print(json.dumps({"seed": args.seed, "seconds_per_step": time_steps(step, args.steps, 3, args.device)}))


def _spawn(seed: int, classes: int, steps: int, device: str, precision: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "bench.gpu_check", "--worker", "--seed", str(seed), "--classes", str(classes),
           "--steps", str(steps), "--device", device, "--precision", precision, "--threads", str(threads)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(procs) -> list[dict]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"gpu_check worker failed: {stderr.strip().splitlines()[-1] if stderr.strip() else p.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def measure_concurrency(classes: int, steps: int, device: str, precision: str, threads: int) -> dict:
    """Part 3: seed 0 alone, then seeds 0, 1, 2 at once; wall seconds of each phase."""
    t0 = time.perf_counter()
    alone = _wait([_spawn(0, classes, steps, device, precision, threads)])[0]["seconds_per_step"]
    alone_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    together = _wait([_spawn(s, classes, steps, device, precision, threads) for s in range(SEEDS)])
    together_wall = time.perf_counter() - t0
    per_step = max(r["seconds_per_step"] for r in together)
    return {"classes": classes, "steps": steps, "alone_s_per_step": alone, "alone_wall_s": alone_wall,
            "together_s_per_step": per_step, "together_wall_s": together_wall,
            "factor": SEEDS * alone / per_step}


def projection(step_rows: list[dict], factor: float, dry: bool) -> dict:
    """Part 4: the paper profile's training time from the measured steps (see the module's doc)."""
    from vaeas import experiments

    from . import flops

    budget = flops.paper_budget("paper")
    seeds = len(experiments.seeds(experiments.load_config(profile="paper")))
    by_shape = {(r["objective"], r["classes"]): r["best_s"] for r in step_rows}
    vaeas_sizes = sorted(c for o, c in by_shape if o == "vaeas")
    serial, rows = 0.0, []
    for b in budget:
        key = ("vae", 0) if b.objective != "vaeas" else ("vaeas", b.classes)
        if key not in by_shape:                                 # dry mode: the nearest measured size
            key = ("vaeas", min(vaeas_sizes, key=lambda c: abs(c - b.classes)))
        seconds = b.steps_per_epoch * b.epochs * by_shape[key] * seeds
        serial += seconds
        rows.append({"run": b.run, "steps": b.steps_per_epoch * b.epochs, "shape": list(key), "seconds_all_seeds": seconds})
    proj = flops.projection(budget)
    eval_s = (proj["eval_s"] + proj["mc_s"]) * seeds
    return {"dry": dry, "seeds": seeds, "runs": rows, "train_serial_s": serial,
            "train_concurrent_s": serial / max(factor, 1.0), "eval_projected_s": eval_s,
            "total_serial_s": serial + eval_s, "total_concurrent_s": serial / max(factor, 1.0) + eval_s}


def write(out_dir: Path, result: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    p, c = result["projection"], result["concurrency"]
    lines = [f"# GPU check ({'DRY: CPU, tiny, not a projection of anything' if result['dry'] else 'device run'})", "",
             f"device: {result['device']}; host: {result['machine']}; load {result['load']}", "",
             "| step | classes | eager ms | graphed ms | compile s |", "|---|---:|---:|---:|---:|"]
    for r in result["steps"]:
        graphed = f"{r['graphed_s'] * 1e3:.2f}" if "graphed_s" in r else r.get("graphed_error", "not tried")
        compile_s = f"{r['compile_s']:.0f}" if "compile_s" in r else ""
        lines.append(f"| {r['objective']} | {r['classes']:,} | {r['eager_s'] * 1e3:.2f} | {graphed} | {compile_s} |")
    lines += ["", f"{SEEDS} seeds of VAE-AS(1, 1), N = {c['classes']:,}, {c['steps']} steps each: one process "
              f"{c['alone_s_per_step'] * 1e3:.2f} ms/step; {SEEDS} concurrent {c['together_s_per_step'] * 1e3:.2f} ms/step "
              f"(slowest); concurrency factor {c['factor']:.2f}", "",
              f"Paper profile, {p['seeds']} seeds, from these steps: training {p['train_serial_s'] / 60:.1f} min serial, "
              f"{p['train_concurrent_s'] / 60:.1f} min with {SEEDS} processes at once; evaluation (projected from FLOPs, "
              f"not measured) {p['eval_projected_s'] / 60:.1f} min; total {p['total_serial_s'] / 60:.1f} / "
              f"{p['total_concurrent_s'] / 60:.1f} min (goal: 15).", f"Wall of this check: {result['wall_s']:.0f} s."]
    (out_dir / "gpu_check.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry", action="store_true", help="CPU, N = 1,000, a few steps, no compiling (forced without CUDA)")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "bench" / "out"), help="folder for gpu_check.{json,md}")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 200; dry 3)")
    ap.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"])
    ap.add_argument("--compile", default="reduce-overhead", help="torch.compile mode of the graphed step ('none': skip)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--classes", type=int, default=55_000, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    dry = args.dry or not torch.cuda.is_available()
    device = "cpu" if dry else "cuda"
    steps = args.steps or (3 if dry else 200)
    compile_mode = None if (dry or args.compile == "none") else args.compile
    precision = "fp32" if dry else args.precision
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    else:
        torch.set_num_threads(1)
    start = time.perf_counter()
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)"
    print(f"gpu_check: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}; {machine()}; "
          f"load {', '.join(f'{v:.2f}' for v in load_average())}; precision {precision}", flush=True)
    shapes = DRY_SHAPES if dry else FULL_SHAPES
    step_rows = measure_steps(shapes, device, precision, steps, compile_mode)
    conc = measure_concurrency(shapes[0][1], steps, device, precision, threads=1 if dry else 0)
    print(f"  {SEEDS} seeds concurrent: factor {conc['factor']:.2f} "
          f"(one {conc['alone_s_per_step'] * 1e3:.2f} ms/step, three {conc['together_s_per_step'] * 1e3:.2f} ms/step)", flush=True)
    proj = projection(step_rows, conc["factor"], dry)
    result = {"dry": dry, "device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "precision": precision,
              "machine": machine(), "load": [round(v, 2) for v in load_average()], "steps": step_rows,
              "concurrency": conc, "projection": proj, "wall_s": time.perf_counter() - start}
    write(Path(args.out), result)
    print(f"  paper profile projected: {proj['total_serial_s'] / 60:.1f} min serial, "
          f"{proj['total_concurrent_s'] / 60:.1f} min with {SEEDS} at once{' (DRY: meaningless)' if dry else ''}; "
          f"wrote {args.out}/gpu_check.{{json,md}} in {result['wall_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
