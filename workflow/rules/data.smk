# fetch -> process: download and verify raw files, then the canonical processed array file.


rule fetch:
    output:
        directory(PIPE.raw_marker(CFG, "{dataset}")),
    params:
        data=lambda wc: CFG.data.__dict__,
    log:
        f"logs/{PROFILE}/fetch-{{dataset}}.log",
    shell:
        "vaeas fetch {wildcards.dataset} --profile {PROFILE} > {log} 2>&1"


from vaeas.data.catalog import EMBEDDED


def _raw_input(wildcards):
    return [] if wildcards.dataset in EMBEDDED else [PIPE.raw_marker(CFG, wildcards.dataset)]


rule process:
    input:
        _raw_input,
    output:
        PIPE.processed_input(CFG, "{dataset}"),
    params:
        data=lambda wc: CFG.data.__dict__,
        code=CODE["process"],
    log:
        f"logs/{PROFILE}/process-{{dataset}}.log",
    shell:
        "vaeas process {wildcards.dataset} --profile {PROFILE} > {log} 2>&1"
