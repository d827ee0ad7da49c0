# evaluate: every Table 2 column of one model; mc_estimate: Figure 2's Monte Carlo estimates.


rule evaluate:
    input:
        model=EXPS.run_file_pattern(EXPS.MODEL_FILE),
        data=lambda wc: PIPE.processed_input(CFG, run_of(wc).dataset),
    output:
        EXPS.run_file_pattern(EXPS.METRICS_FILE),
    params:
        evaluation=lambda wc: CFG.evaluation.__dict__,
    threads: 1
    resources:
        gpu=GPU,
    log:
        "logs/{profile}/evaluate-{experiment}-{run}-seed{seed}.log",
    shell:
        "OMP_NUM_THREADS={threads} vaeas evaluate --model {input.model} --out {output} --quiet > {log} 2>&1"


rule mc_estimate:
    input:
        model=EXPS.run_file_pattern(EXPS.MODEL_FILE),
        data=lambda wc: PIPE.processed_input(CFG, run_of(wc).dataset),
    output:
        EXPS.run_file_pattern(EXPS.MC_FILE),
    params:
        evaluation=lambda wc: CFG.evaluation.__dict__,
    threads: 1
    resources:
        gpu=GPU,
    log:
        "logs/{profile}/mc-{experiment}-{run}-seed{seed}.log",
    shell:
        "OMP_NUM_THREADS={threads} vaeas mc-estimate --model {input.model} --out {output} --quiet > {log} 2>&1"
