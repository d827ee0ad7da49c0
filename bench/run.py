"""``python -m bench``: the four benchmarks of issue 5 and their targets, one table.

    .venv/bin/python -m bench                 # 1-3 (about 5 minutes on 2 CPU cores)
    .venv/bin/python -m bench --with-dag      # and 4, the demo profile's whole DAG (minutes)
    .venv/bin/python -m bench --only step     # one of: step, step-profile, mc, iw, dag, startup
    .venv/bin/python -m bench --only step-profile   # the step at mnist-cpu's shapes, N = 1,000 and 10,000 classes
    .venv/bin/python -m bench --only startup --only dag --dag-profile ci   # 5 beside 4: jobs' start-up vs the DAG

Ratios compare timings taken in this run on this machine. Run it on an otherwise idle machine:
the load average is printed before and after, and a busy machine slows the small kernels of the
step (thread contention) far more than the large matmuls of its floor.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from .common import fmt_s, load_average, machine

TARGETS = {"step": 1.5, "step_profile": 1.2, "mc_speedup": 10.0, "mc_peak_gb": 2.0, "iw": 0.5, "dag_min": 10.0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["step", "step-profile", "mc", "iw", "dag", "startup"], action="append")
    p.add_argument("--step-profile", default="mnist-cpu", help="profile of params.yaml whose model and batch "
                   "step-profile measures (default: the real-data profile)")
    p.add_argument("--step-classes", type=int, action="append",
                   help="classifier classes (N, one label per image) of step-profile (default: 1,000 and 10,000)")
    p.add_argument("--with-dag", action="store_true", help="also run benchmark 4 (the demo DAG)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (best is kept)")
    p.add_argument("--mc-fraction", type=float, default=0.1,
                   help="share of the S rows the straightforward MC variant runs (its time is scaled up)")
    p.add_argument("--iw-examples", type=int, default=128)
    p.add_argument("--dag-profile", default="demo")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall: wall time on all threads; cpu: process CPU time on one thread (robust to "
                        "other processes on a shared machine)")
    p.add_argument("--precision", action="append", choices=["fp32", "bf16", "bf16w"],
                   help="step-profile's precision(s) (training.precision; bf16 = autocast; default fp32); "
                        "the floor is fp32's matmuls either way")
    p.add_argument("--device", default="cpu", help="device of benchmarks 1 and 3 (e.g. cuda); 2 and 4 run on the CPU")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        from .common import use_cpu_clock
        use_cpu_clock()
    from vaeas.runtime import tune_allocator
    allocator = tune_allocator()                      # as train() and evaluate() do
    which = args.only or ["step", "mc", "iw"] + (["dag"] if args.with_dag else [])

    print(f"machine: {machine()}; glibc allocator tuned (vaeas.runtime.tune_allocator): {allocator}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load_average())}")
    results, rows = {}, []
    t_all = time.perf_counter()
    if "step" in which:
        from . import step
        r = results["step"] = step.run(repeats=args.repeats, device=args.device)
        rows.append(("1 training step (paper MNIST shapes)",
                     f"{fmt_s(r['step_s'])}/step vs floor {fmt_s(r['floor_s'])} "
                     f"(matmul {fmt_s(r['matmul_s'])} = {r['flops'] / 1e9:.1f} GFLOP at {r['sgemm_flops_per_s'] / 1e9:.0f} GFLOP/s; "
                     f"Adam {fmt_s(r['adam_s'])} = {28 * r['params'] / 1e6:.0f} MB at {r['copy_bytes_per_s'] / 1e9:.1f} GB/s); "
                     f"first implementation {fmt_s(r['naive_s'])} ({r['speedup_vs_naive']:.2f}x slower)",
                     f"{r['ratio']:.2f}x floor", f"<= {TARGETS['step']}x", r["ratio"] <= TARGETS["step"]))
    if "step-profile" in which:
        from vaeas.experiments import load_config

        from . import step
        cfg = load_config("params.yaml", profile=args.step_profile)
        m = cfg.model
        for n, precision in [(n, pr) for n in args.step_classes or [1_000, 10_000] for pr in args.precision or ["fp32"]]:
            key = f"step-{args.step_profile}-N{n}" + ("" if precision == "fp32" else f"-{precision}")
            r = results[key] = step.run(repeats=args.repeats, device=args.device, n_train=n, model_cfg=m,
                                        batch=cfg.training.batch_size, with_naive=False, precision=precision)
            rows.append((f"1b training step, profile {args.step_profile}, {precision} (batch {r['batch']}, {m.activation}, "
                         f"decoder {m.decoder_layers} × {m.hidden_units}, classifier → {n:,})",
                         f"{fmt_s(r['step_s'])}/step vs floor {fmt_s(r['floor_s'])} "
                         f"(matmul {fmt_s(r['matmul_s'])} = {r['flops'] / 1e9:.2f} GFLOP at {r['sgemm_flops_per_s'] / 1e9:.0f} GFLOP/s; "
                         f"Adam {fmt_s(r['adam_s'])} = {28 * r['params'] / 1e6:.0f} MB at {r['copy_bytes_per_s'] / 1e9:.1f} GB/s)",
                         f"{r['ratio']:.2f}x floor", f"<= {TARGETS['step_profile']}x", r["ratio"] <= TARGETS["step_profile"]))
    if "mc" in which:
        from . import mc
        r = results["mc"] = mc.run(fraction=args.mc_fraction)
        peak_gb = r["ours_peak_bytes"] / 1e9
        rows.append(("2 Monte Carlo MI/MD, S = 55,000",
                     f"{fmt_s(r['ours_s'])}, peak {peak_gb:.2f} GB vs straightforward {fmt_s(r['straight_s'])}"
                     f"{'' if r['fraction'] == 1 else ' (scaled from ' + format(r['straight_rows'], ',') + ' rows)'}, "
                     f"peak {r['straight_peak_bytes'] / 1e9:.2f} GB; MI {r['ours_mi']:.4f} vs {r['straight_mi']:.4f}",
                     f"{r['speedup']:.1f}x faster, {peak_gb:.2f} GB",
                     f">= {TARGETS['mc_speedup']:.0f}x, <= {TARGETS['mc_peak_gb']:.0f} GB",
                     r["speedup"] >= TARGETS["mc_speedup"] and peak_gb <= TARGETS["mc_peak_gb"]))
    if "iw" in which:
        from . import iw
        r = results["iw"] = iw.run(examples=args.iw_examples, repeats=1, device=args.device)
        rows.append((f"3 IW-NLL k = {r['k']}, {r['examples']} test images",
                     f"{fmt_s(r['wall_s'])}: {r['achieved_flops_per_s'] / 1e9:.0f} GFLOP/s vs sgemm "
                     f"{r['sgemm_flops_per_s'] / 1e9:.0f} GFLOP/s at the same shapes",
                     f"{r['ratio']:.0%} of sgemm", f">= {TARGETS['iw']:.0%}", r["ratio"] >= TARGETS["iw"]))
    if "dag" in which:
        from . import dag
        r = results["dag"] = dag.run(profile=args.dag_profile)
        rows.append((f"4 whole DAG, profile {r['profile']}",
                     f"{r['jobs']} jobs, `{r['command']}` in a fresh copy",
                     fmt_s(r["wall_s"]), f"<= {TARGETS['dag_min']:.0f} min", r["wall_s"] <= 60 * TARGETS["dag_min"]))
    if "startup" in which:
        from . import startup
        r = results["startup"] = startup.run(profile=args.dag_profile)
        dag_run = results.get("dag")
        core_s = dag_run["wall_s"] * dag_run["cores"] if dag_run else None
        share = f"{r['startup_core_s'] / core_s:.0%} of the DAG's {core_s:.0f} core-s" if core_s else "(add --only dag)"
        rows.append((f"5 job start-up, profile {r['profile']}",
                     "; ".join(f"{kind}: {r['jobs'].get(kind, 0)} jobs x {fmt_s(s)}" for kind, s in r["import_s"].items()
                               if kind in r["jobs"]) + f" = {r['startup_core_s']:.0f} core-s "
                     f"({r['torch_share']:.0%} of it importing torch)", share, "(measured, no target)", True))
    load_after = load_average()
    print(f"load average after:  {' '.join(f'{v:.2f}' for v in load_after)}  "
          f"(bench took {fmt_s(time.perf_counter() - t_all)})\n")
    print("| benchmark | measured (this run) | ratio | target | met |")
    print("|---|---|---|---|---|")
    for name, detail, ratio, target, ok in rows:
        print(f"| {name} | {detail} | **{ratio}** | {target} | {'yes' if ok else 'NO'} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "load_after": load_after, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
