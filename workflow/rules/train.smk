# train: one job per data set x configuration x seed. `params` carries the run's resolved
# configuration so that editing it in params.yaml reruns exactly this job.


rule train:
    input:
        lambda wc: PIPE.processed_input(CFG, run_of(wc).dataset),
    output:
        model=EXPS.run_file_pattern(EXPS.MODEL_FILE),
        log=EXPS.run_file_pattern(EXPS.LOG_FILE),
    params:
        run=lambda wc: EXPS.run_params(CFG, run_of(wc)),
    threads: 1
    resources:
        gpu=GPU,
    log:
        "logs/{profile}/train-{experiment}-{run}-seed{seed}.log",
    shell:
        "OMP_NUM_THREADS={threads} vaeas train --run {wildcards.experiment}.{wildcards.run} "
        "--seed {wildcards.seed} --out {output.model} --quiet --profile {wildcards.profile} > {log} 2>&1"
