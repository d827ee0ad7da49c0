# vaeas: rebuild every table and figure of the paper.
#   snakemake --cores 4                      # the profile named in params.yaml
#   snakemake --cores 4 --config profile=ci  # another profile
# The default rule is declared here, in the root file: `include:` restores the previous default
# target, so a root file that only includes others would build nothing.
from snakemake.utils import min_version

min_version("9.0")


# vaeas reads params.yaml before Snakemake does (configfile:), so that invalid YAML, too, ends in
# one line naming the file and the line, like every other error of params.yaml.
import sys

from vaeas.config import read_params
from vaeas.errors import VaeasError

try:
    PARAMS_RAW = read_params("params.yaml")
except VaeasError as exc:
    sys.exit(f"vaeas: error: {exc}")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


rule all:
    input:
        ALL_TARGETS,
        preflight=preflight_input,
    default_target: True


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
