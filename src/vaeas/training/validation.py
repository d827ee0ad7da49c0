"""Early stopping as the paper's setting would select it (issue "Scale", item 2): every
``training.validate_every`` epochs, and at the last, the IW-NLL (Burda et al. 2015, k =
``training.validate_samples``) of a fixed, evaluation-binarized set of validation images; the model
state of the lowest one is kept (:class:`Best`) in the checkpoint and the model file, and
evaluation reports its test columns beside the last epoch's.

Validation images: the data set's validation split (MNIST: official training images
55,000–59,999; digits: its 100), or, for a data set without one (Omniglot), the training images a
``data.train_size`` subset leaves out (:func:`vaeas.data.train_subset`); never a test image.

Its random draws come from a generator of its own, re-seeded at every validation, and it runs in
fp32 without gradients: the weights training reaches are the same bit for bit with validation on
or off (tests/test_training.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import Config
from ..errors import VaeasError
from ..passes import iw_nll_dataset
from ..runtime import eval_binarized

#: Offsets from ``evaluation.binarize_seed`` of the validation images' binarization and of the
#: importance samples' draws (evaluation uses +0…+7).
BINARIZE_OFFSET, SAMPLES_OFFSET = 8, 9


def validation_images(cfg: Config, dataset) -> torch.Tensor:
    """The first ``training.validate_size`` validation images of ``dataset`` (all when 0),
    binarized once with a fixed seed; a one-line error naming the key when there are too few."""
    x, name = dataset.valid_x, dataset.name
    if len(x) == 0:
        raise VaeasError(f"training.validate_every: data set '{name}' has no validation images (a data set without a "
                         f"validation split gets the training images a data.train_size subset leaves out); "
                         f"set training.validate_every: 0 for it")
    size = cfg.training.validate_size
    if size > len(x):
        raise VaeasError(f"training.validate_size ({size}) exceeds the {len(x)} validation images of '{name}'")
    return eval_binarized(x[:size] if size else x, cfg.evaluation.binarize_seed + BINARIZE_OFFSET)


def is_due(cfg: Config, epoch: int) -> bool:
    """Whether the epoch just completed (1-based) is validated."""
    every = cfg.training.validate_every
    return bool(every) and (epoch % every == 0 or epoch == cfg.training.epochs)


@dataclass
class Best:
    """The validated epoch of lowest IW-NLL so far, and the model state at its end."""

    epoch: int
    valid_nll: float
    state: dict[str, torch.Tensor]

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "valid_nll": self.valid_nll, "model": self.state}

    @classmethod
    def from_dict(cls, blob: dict | None) -> "Best | None":
        return None if blob is None else cls(blob["epoch"], blob["valid_nll"], blob["model"])


class Validator:
    """IW-NLL of the validation images under a model, and the best epoch so far."""

    def __init__(self, cfg: Config, dataset, device: torch.device, best: Best | None = None):
        self.x = validation_images(cfg, dataset).to(device)
        self.k, self.chunk = cfg.training.validate_samples, cfg.evaluation.iw_chunk
        self.seed = cfg.evaluation.binarize_seed + SAMPLES_OFFSET
        self.best = best

    def nll(self, model) -> float:
        generator = torch.Generator(device=self.x.device).manual_seed(self.seed)
        return iw_nll_dataset(model, self.x, self.k, self.chunk, generator).mean().item()

    def __call__(self, model, epoch: int) -> float:
        """Validate ``model`` after ``epoch``; keep a copy of its state when it is the best."""
        nll = self.nll(model)
        if self.best is None or nll < self.best.valid_nll:
            self.best = Best(epoch, nll, {n: v.detach().to("cpu", copy=True) for n, v in model.state_dict().items()})
        return nll
