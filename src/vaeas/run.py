"""The one run object: :class:`RunSpec`, what distinguishes one trained model from another.

It carries the run id (``<experiment>.<run>.seed<k>``, empty for an ad-hoc ``vaeas train
--dataset``), the data set, the objective's name and its hyper-parameters (every one, defaults
filled in, so two specs that train the same model compare equal), and the seed. It is what a
config.json's ``run`` section and a model file's ``spec`` serialise (:meth:`to_dict`,
:meth:`from_dict`), and what ``train``, ``evaluate``, ``mc-estimate`` and the metrics rows read.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any, Mapping

from . import objectives
from .objectives.base import key_namer
from .data import DATASETS
from .errors import VaeasError


@dataclass(frozen=True)
class RunSpec:
    """Built as ``RunSpec("mnist", "vaeas", {"alpha": 0.5}, seed=1)``: validated on construction,
    the hyper-parameters completed with the objective's defaults. An error is one line naming the
    offending field as ``where`` says (see :meth:`Objective.make_params`: ``--{}`` for flags, a
    params.yaml key pattern, or a file as prefix)."""

    dataset: str
    objective: str = objectives.DEFAULT
    params: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    run_id: str = ""
    where: InitVar[str] = ""

    def __post_init__(self, where: str) -> None:
        name_of = key_namer(where)
        if self.dataset not in DATASETS:
            raise VaeasError(f"{name_of('dataset')}: unknown data set '{self.dataset}' (choose from: {', '.join(sorted(DATASETS))})")
        definition = objectives.get(self.objective, name_of("objective"))
        hyper = definition.make_params(dict(self.params or {}), where)
        object.__setattr__(self, "params", definition.as_dict(hyper))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise VaeasError(f"{name_of('seed')} must be an integer >= 0, got {self.seed!r}")

    @property
    def definition(self) -> objectives.Objective:
        return objectives.get(self.objective)

    @property
    def hyper(self) -> Any:
        """The objective's hyper-parameter dataclass, as its loss reads it."""
        return self.definition.params(**self.params)

    def describe(self) -> str:
        """``mnist VAE-AS α=1 β=0.5 seed 0``: for progress bars and messages."""
        return f"{self.dataset} {self.definition.describe(self.params)} seed {self.seed}"

    def to_dict(self, canonical: bool = False) -> dict:
        """The spec as config.json's ``run`` group and a model file hold it; ``canonical`` leaves
        out the hyper-parameters at their objective's default (vaeas.staleness: a new
        hyper-parameter whose default keeps the old behaviour then changes no record)."""
        params = dict(self.params)
        if canonical:
            base = self.definition.as_dict(self.definition.params())
            params = {k: v for k, v in params.items() if v != base.get(k)}
        return {"run_id": self.run_id, "dataset": self.dataset, "objective": self.objective,
                "params": params, "seed": self.seed}

    @classmethod
    def from_dict(cls, content: Mapping[str, Any], where: str = "") -> "RunSpec":
        try:
            params = content.get("params")
            if params is None:    # written before hyper-parameters had their own group (alpha, beta beside seed)
                names = objectives.get(content["objective"]).param_names()
                params = {k: content[k] for k in names if k in content}
            return cls(content["dataset"], content["objective"], params, content["seed"], content.get("run_id", ""), where)
        except KeyError as exc:
            raise VaeasError(f"{where}: the run has no '{exc.args[0]}'; run 'vaeas resolve' with this vaeas") from None

    def same_model(self, other: "RunSpec") -> str | None:
        """Why ``other`` trains another model than this — the first differing field as
        ``run.<field>: this -> other`` — or None. The run id is a name, not a setting."""
        for key in ("dataset", "objective", "seed"):
            if getattr(self, key) != getattr(other, key):
                return f"run.{key}: {getattr(self, key)!r} -> {getattr(other, key)!r}"
        for key in sorted(set(self.params) | set(other.params)):
            mine, theirs = self.params.get(key, "(absent)"), other.params.get(key, "(absent)")
            if mine != theirs:
                return f"run.params.{key}: {mine!r} -> {theirs!r}"
        return None
