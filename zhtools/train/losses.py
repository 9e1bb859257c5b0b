"""Losses for imbalanced classification: logit adjustment (Menon et al., ICLR 2021).

Loss variant: cross-entropy on ``f_y(x) + tau * log(pi_y)``, predict with plain argmax.
Post-hoc variant: train plain cross-entropy, predict ``argmax f_y(x) - tau * log(pi_y)``.
Priors ``pi`` are the training-label frequencies. :func:`tune_posthoc_tau` picks the post-hoc
``tau`` that maximises balanced accuracy on a dev set (the paper's advice: tau is worth tuning).
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


TAU_GRID = tuple(round(0.1 * k, 1) for k in range(31))  # 0.0, 0.1, ..., 3.0


def tune_posthoc_tau(logits: torch.Tensor, target: torch.Tensor, log_prior: torch.Tensor,
                     grid: Sequence[float] = TAU_GRID) -> tuple[float, float]:
    """The post-hoc ``tau`` (from ``grid``) whose adjusted argmax has the highest balanced
    accuracy on ``(logits, target)``, a labelled dev set; ties go to the smallest tau (the least
    adjustment). Returns ``(tau, balanced_accuracy)``."""
    from zhtools.eval.cls import score_cls

    if logits.shape[0] == 0:
        return 0.0, 0.0
    gold = target.tolist()
    best = (float("-inf"), 0.0)
    for tau in grid:
        score = score_cls(gold, posthoc_adjust(logits, log_prior, tau).argmax(-1).tolist())["balanced_accuracy"]
        if score > best[0]:
            best = (score, float(tau))
    return best[1], best[0]
