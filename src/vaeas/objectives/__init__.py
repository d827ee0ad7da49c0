"""The training objectives, one module each, and the registry that names them.

Add an objective: write one module ``objectives/<name>.py`` defining ``OBJECTIVE =`` an
:class:`~vaeas.objectives.base.Objective` (its hyper-parameter dataclass, its loss, whether it
needs the classifier, its inert keys, its curves), and use it in params.yaml (``objective:
<name>`` plus its hyper-parameters). The registry finds every module of this package that
defines ``OBJECTIVE``; nothing else names it: the schema, the CLI, the contract, tables and
figures read the registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import VaeasError
from .base import LOG_COLUMNS, LOGGED, LossTerms, Objective, standard_normal  # noqa: F401

#: The objective of a run entry that names none (the paper's method).
DEFAULT = "vaeas"

#: name -> Objective, ordered as tables list methods: by ``Objective.order``, then by name.
REGISTRY: dict[str, Objective] = {}
_found = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__) if m.name != "base"]
for _objective in sorted((m.OBJECTIVE for m in _found if hasattr(m, "OBJECTIVE")), key=lambda o: (o.order, o.name)):
    if _objective.name in REGISTRY:
        raise ImportError(f"two objectives are named {_objective.name!r}")
    REGISTRY[_objective.name] = _objective


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str, where: str = "") -> Objective:
    """The objective called ``name``; a one-line error naming ``where`` (the key or flag it came
    from) and the registered names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        prefix = f"{where}: " if where else ""
        raise VaeasError(f"{prefix}unknown objective {name!r} (choose from: {', '.join(names())})") from None


#: The paper's two methods, for the modules (report, claims) whose statements are about them.
VAE = REGISTRY["vae"]
VAEAS = REGISTRY["vaeas"]
