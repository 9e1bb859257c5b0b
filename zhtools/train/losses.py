"""Losses for imbalanced classification: logit adjustment (Menon et al., ICLR 2021).

Loss variant: cross-entropy on ``f_y(x) + tau * log(pi_y)``, predict with plain argmax.
Post-hoc variant: train plain cross-entropy, predict ``argmax f_y(x) - tau * log(pi_y)``.
Priors ``pi`` are the training-label frequencies.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def label_log_priors(labels: Sequence[int], num_classes: int, eps: float = 1e-12) -> torch.Tensor:
    """``log(pi_y)`` from training labels (class ids ``0..num_classes-1``)."""
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes)
    pri = counts.double() / max(1, int(counts.sum()))
    return torch.log(pri + eps).float()


def logit_adjusted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0
) -> torch.Tensor:
    """Cross-entropy of ``logits + tau * log_prior`` (mean over the batch)."""
    return F.cross_entropy(logits.float() + tau * log_prior.to(logits.device), target)


def posthoc_adjust(logits: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Prediction-time adjustment: ``logits - tau * log_prior``."""
    return logits.float() - tau * log_prior.to(logits.device)
