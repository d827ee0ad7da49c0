"""vaeas: reproduction pipeline for "Improve Variational Autoencoder with Auxiliary Softmax
Multiclassifier" (VAE-AS).

Modules, one per concept, dependencies pointing one way:
``config`` → ``data`` → ``models`` → ``estimators`` / ``metrics`` → ``training`` → ``reporting``;
``cli`` is the only entry point the pipeline (Snakemake, DVC) calls.
"""

__version__ = "0.1.0"
