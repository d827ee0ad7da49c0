# evaluate: every Table 2 column of one model; mc_estimate: Figure 2's Monte Carlo estimates.
# Settings come from the run's config.json (never from model.pt); `params` carries what they depend on.


rule evaluate:
    input:
        model=EXPS.run_file_pattern(EXPS.MODEL_FILE),
        data=lambda wc: ancient(PIPE.processed_input(CFG, run_of(wc).dataset)),
        config=config_input,
    output:
        EXPS.run_file_pattern(EXPS.METRICS_FILE),
    params:
        run=contract_part(CONTRACT.EVALUATE_KEYS),
        code=CODE["evaluate"],
    threads: 1
    resources:
        gpu=GPU,
    log:
        "logs/{profile}/evaluate-{experiment}-{run}-seed{seed}.log",
    shell:
        "OMP_NUM_THREADS={threads} vaeas evaluate --config {input.config} --model {input.model} --out {output} --quiet > {log} 2>&1"


rule mc_estimate:
    input:
        model=EXPS.run_file_pattern(EXPS.MODEL_FILE),
        data=lambda wc: ancient(PIPE.processed_input(CFG, run_of(wc).dataset)),
        config=config_input,
    output:
        EXPS.run_file_pattern(EXPS.MC_FILE),
    params:
        run=contract_part(CONTRACT.EVALUATE_KEYS),
        code=CODE["evaluate"],
    threads: 1
    resources:
        gpu=GPU,
    log:
        "logs/{profile}/mc-{experiment}-{run}-seed{seed}.log",
    shell:
        "OMP_NUM_THREADS={threads} vaeas mc-estimate --config {input.config} --model {input.model} --out {output} --quiet > {log} 2>&1"
