# train: one job per data set x configuration x seed. It reads everything from the run's
# config.json; `params` carries the groups of it the model depends on (and the digest of the code
# it runs), so editing params.yaml reruns exactly the jobs whose resolved configuration changed.
# The job's log gets a line per twentieth of the run (epoch, loss, pace, time left: `tail -f` it);
# its last line, the summary (epochs, loss, KL, seconds), is echoed into Snakemake's output.


rule train:
    input:
        data=lambda wc: ancient(PIPE.processed_input(CFG, run_of(wc).dataset)),
        config=config_input,
        stale=force_if_stale,
    output:
        model=EXPS.run_file_pattern(EXPS.MODEL_FILE),
        log=EXPS.run_file_pattern(EXPS.LOG_FILE),
    params:
        run=contract_part(CONTRACT.TRAIN_KEYS),
        code=CODE["train"],
    threads: 1
    resources:
        gpu=GPU,
    log:
        "logs/{profile}/train-{experiment}-{run}-seed{seed}.log",
    shell:
        "OMP_NUM_THREADS={threads} vaeas train --config {input.config} --out {output.model} --progress lines > {log} 2>&1 "
        "&& tail -n 1 {log}"
