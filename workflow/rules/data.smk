# fetch -> process: download and verify raw files, then the canonical processed array file.


rule fetch:
    output:
        directory(f"{CFG.data.root}/raw/{{dataset}}"),
    params:
        data=lambda wc: CFG.data.__dict__,
    log:
        f"logs/{PROFILE}/fetch-{{dataset}}.log",
    shell:
        "vaeas fetch {wildcards.dataset} --profile {PROFILE} > {log} 2>&1"


def _raw_input(wildcards):
    return [] if wildcards.dataset == "digits" else [f"{CFG.data.root}/raw/{wildcards.dataset}"]


rule process:
    input:
        _raw_input,
    output:
        f"{CFG.data.root}/processed/{{dataset}}.npz",
    params:
        data=lambda wc: CFG.data.__dict__,
    log:
        f"logs/{PROFILE}/process-{{dataset}}.log",
    shell:
        "vaeas process {wildcards.dataset} --profile {PROFILE} > {log} 2>&1"
