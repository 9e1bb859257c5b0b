"""Impact-matrix engine (perturbed masking)."""

from zhtools.probe.engine import ImpactEngine, ImpactResult, Units

__all__ = ["ImpactEngine", "ImpactResult", "Units"]
