"""vaeas: reproduction pipeline for "Improve Variational Autoencoder with Auxiliary Softmax
Multiclassifier" (VAE-AS).

Modules (and packages) one per concept, dependencies pointing one way:
``config`` and ``runtime`` (leaves) → ``data`` → ``models`` / ``experiments`` (the grid and its
paths) → ``estimators`` / ``metrics`` → ``training`` → ``evaluation`` / ``pipeline`` → ``report``
→ ``cli``, the only entry point the pipeline (Snakemake, DVC) calls. ``tests/test_architecture.py``
checks that no import points the other way, that there is no cycle, and that no file is over 400
lines.
"""

__version__ = "0.1.0"
