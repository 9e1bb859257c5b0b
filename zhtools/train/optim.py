"""Optimizer extras: Lookahead (Zhang et al. 2019) with checkpointable slow weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


class Lookahead(torch.optim.Optimizer):
    """Wrap any optimizer: every ``k`` inner steps, slow <- slow + alpha * (fast - slow) and
    fast <- slow. Slow weights live in ``state_dict()`` so resume is exact.

    ``slow_weights()`` is a context manager that swaps the slow weights in (for evaluation).
    """

    def __init__(self, inner: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        if k < 1 or not 0.0 < alpha <= 1.0:
            raise ValueError("Lookahead needs k >= 1 and 0 < alpha <= 1")
        self.inner = inner
        self.k = k
        self.alpha = alpha
        self.counter = 0
        self.slow: list[torch.Tensor] = [
            p.detach().clone() for g in inner.param_groups for p in g["params"]
        ]
        # Share param_groups/state with the inner optimizer (schedulers and clipping see them).
        self.param_groups = inner.param_groups
        self.defaults = inner.defaults
        self.state = inner.state

    def _params(self) -> Iterator[torch.Tensor]:
        for g in self.inner.param_groups:
            yield from g["params"]

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001
        loss = self.inner.step(closure)
        self.counter += 1
        if self.counter % self.k == 0:
            for p, s in zip(self._params(), self.slow):
                s.add_(p.detach() - s, alpha=self.alpha)
                p.copy_(s)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {
            "inner": self.inner.state_dict(),
            "slow": list(self.slow),
            "counter": self.counter,
            "k": self.k,
            "alpha": self.alpha,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        with torch.no_grad():
            for s, v in zip(self.slow, state["slow"]):
                s.copy_(v)
        self.counter = int(state["counter"])
        self.k = int(state["k"])
        self.alpha = float(state["alpha"])
        self.param_groups = self.inner.param_groups
        self.state = self.inner.state

    @contextmanager
    def slow_weights(self) -> Iterator[None]:
        """Temporarily load the slow weights into the model (e.g. for evaluation)."""
        backup = [p.detach().clone() for p in self._params()]
        with torch.no_grad():
            for p, s in zip(self._params(), self.slow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self._params(), backup):
                    p.copy_(b)


class LazyRows(torch.optim.Optimizer):
    """Lazy embedding updates around any optimizer: rows of the listed embedding matrices whose
    gradient is entirely zero (tokens absent from the batch) are left untouched by the step,
    optimizer state included (Adam's moments do not decay for them, as in TF LazyAdam; weight
    decay does not shrink them). Other parameters are updated as usual.

    The inner step runs on whole tensors; absent rows are restored afterwards from a copy taken
    before the step, so it works with any optimizer whose per-parameter state tensors have the
    parameter's shape (AdamW, Adam, SGD momentum, RMSprop, ...).
    """

    def __init__(self, inner: torch.optim.Optimizer, embeddings: list[torch.nn.Parameter]) -> None:
        self.inner = inner
        owned = {id(p) for g in inner.param_groups for p in g["params"]}
        self.embeddings = [e for e in embeddings if id(e) in owned and e.ndim == 2]
        self.param_groups = inner.param_groups
        self.defaults = inner.defaults
        self.state = inner.state

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001
        saved = []
        for e in self.embeddings:
            if e.grad is None:
                continue
            absent = (e.grad == 0).all(dim=1).nonzero().squeeze(1)
            if not len(absent):
                continue
            st = self.inner.state.get(e, {})
            rows = {k: v[absent].clone() for k, v in st.items()
                    if torch.is_tensor(v) and v.shape == e.shape}
            saved.append((e, absent, e[absent].clone(), rows))
        loss = self.inner.step(closure)
        # State created by this step keeps whatever the optimizer initialises it to for a zero
        # gradient (zeros for Adam/SGD, the initial accumulator for Adagrad).
        st_of = self.inner.state
        for e, absent, value, rows in saved:
            e[absent] = value
            for k, v in rows.items():
                st_of[e][k][absent] = v
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
        self.param_groups = self.inner.param_groups
        self.state = self.inner.state


def embedding_weights(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Trainable weights of every ``nn.Embedding`` in the model (token, position and type tables:
    in each, rows a batch does not use get no gradient)."""
    return [m.weight for m in model.modules()
            if isinstance(m, torch.nn.Embedding) and m.weight.requires_grad]
