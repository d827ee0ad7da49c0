# per-seed results -> tables -> figures -> claims -> report. Inputs come from vaeas.pipeline, the
# same functions that generate dvc.yaml, so both DAGs read and write the same files.
RES = PIPE.results_dir(CFG)


rule seeds:
    input:
        lambda wc: checked(PIPE.seeds_inputs(CFG, wc.experiment)),
    output:
        f"{RES}/seeds/{{experiment}}.csv",
    params:
        code=CODE["report"],
    shell:
        "vaeas seeds {wildcards.experiment} --profile {PROFILE}"


rule table:
    input:
        lambda wc: checked(PIPE.table_inputs(CFG, int(wc.n))),
    output:
        csv=f"{RES}/tables/table{{n}}.csv",
        json=f"{RES}/tables/table{{n}}.json",
        md=report(f"{RES}/tables/table{{n}}.md", caption="../report/table.rst", category="Tables"),
    wildcard_constraints:
        n="[123]",
    params:
        code=CODE["report"],
    shell:
        "vaeas table {wildcards.n} --profile {PROFILE}"


rule baselines:
    input:
        lambda wc: checked([PIPE.seeds_path(CFG, wc.experiment)]),
    output:
        csv=f"{RES}/tables/{{experiment}}.csv",
        md=report(f"{RES}/tables/{{experiment}}.md", caption="../report/table.rst", category="Tables"),
        json=f"{RES}/tables/{{experiment}}.json",
        paired=f"{RES}/tables/{{experiment}}_paired.csv",
        png=report(f"{RES}/figures/{{experiment}}.png", caption="../report/figure.rst", category="Figures"),
    wildcard_constraints:
        experiment="baselines_[a-z]+",
    params:
        code=CODE["report"],
    shell:
        "vaeas baselines {wildcards.experiment} --profile {PROFILE}"


rule scaling:
    input:
        lambda wc: checked([PIPE.seeds_path(CFG, "scaling")]),
    output:
        csv=f"{RES}/tables/scaling.csv",
        md=report(f"{RES}/tables/scaling.md", caption="../report/table.rst", category="Tables"),
        json=f"{RES}/tables/scaling.json",
        paired=f"{RES}/tables/scaling_paired.csv",
        pooled=f"{RES}/tables/scaling_pooled.csv",
        png=report(f"{RES}/figures/scaling.png", caption="../report/figure.rst", category="Figures"),
    params:
        code=CODE["report"],
    shell:
        "vaeas scaling --profile {PROFILE}"


rule figure:
    input:
        lambda wc: checked(PIPE.figure_inputs(CFG, wc.name)),
    output:
        report(f"{RES}/figures/{{name}}.png", caption="../report/figure.rst", category="Figures"),
    wildcard_constraints:
        name="fig[2345]|table[123]",
    params:
        code=CODE["report"],
    shell:
        "vaeas figure {wildcards.name} --profile {PROFILE}"


rule claims:
    input:
        lambda wc: checked(PIPE.claims_inputs(CFG)),
    output:
        report(f"{RES}/claims.md", caption="../report/claims.rst", category="Claims"),
        report(f"{RES}/verdict.md", caption="../report/claims.rst", category="Claims"),
    params:
        code=CODE["report"],
    shell:
        "vaeas claims --profile {PROFILE}"


rule report:
    input:
        lambda wc: checked(PIPE.report_inputs(CFG)),
    output:
        report(f"{RES}/REPORT.md", caption="../report/report.rst", category="Report"),
    params:
        code=CODE["report"],
    shell:
        "vaeas report --profile {PROFILE}"
