"""The one zhtools training loop (pretraining, summarizer, finetune/distill all run on it).

AdamW with linear warmup + linear/cosine decay, gradient accumulation, gradient clipping,
bf16 autocast (default on CUDA), optional Lookahead, tqdm progress, periodic evaluation with
best-model tracking, atomic checkpoints (model, optimizer, scheduler, RNG, data position) and
exact resume, DistributedDataParallel when started under ``torchrun``. With ``average_last = N``
the model weights at each of the last N evaluations are kept in ``OUT/snapshots`` and their mean
(checkpoint averaging) is evaluated and exported to ``OUT/averaged`` when training ends.

Data contract: ``batches(start)`` yields the global stream of micro-batches beginning at
global index ``start`` (deterministic given the seed); rank r of W uses indices ``i % W == r``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from zhtools.train.checkpoint import average_model_states, load_checkpoint, save_checkpoint
from zhtools.train.optim import LazyRows, Lookahead, embedding_weights

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    out: str
    steps: int = 1000
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of steps if < 1, else a step count
    decay: str = "linear"  # linear | cosine | constant
    grad_accum: int = 1
    clip: float = 1.0
    lookahead: bool = False
    la_k: int = 5
    la_alpha: float = 0.5
    lazy_embeddings: bool = False  # leave embedding rows absent from the batch untouched
    eval_every: int = 500
    save_every: int = 200
    log_every: int = 20
    seed: int = 0
    bf16: bool | None = None  # None: on for CUDA only
    progress: bool = True
    max_minutes: float | None = None  # checkpoint and stop after this much wall time
    best_metric: str | None = None
    greater_is_better: bool = True
    average_last: int = 0  # keep the weights of the last N evaluations; export their mean at the end
    extra: dict[str, Any] = field(default_factory=dict)


def dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (1 process otherwise)."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    st = {
        "torch": torch.get_rng_state(),
        "python": _py_state_to_json(random.getstate()),
        "numpy": _np_state_to_json(np.random.get_state()),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(_json_to_py_state(st["python"]))
    np.random.set_state(_json_to_np_state(st["numpy"]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _py_state_to_json(s: tuple) -> list:
    return [s[0], list(s[1]), s[2]]


def _json_to_py_state(s: list) -> tuple:
    return (s[0], tuple(s[1]), s[2])


def _np_state_to_json(s: tuple) -> list:
    return [s[0], torch.from_numpy(s[1].astype(np.int64)), s[2], s[3], s[4]]


def _json_to_np_state(s: list) -> tuple:
    return (s[0], s[1].numpy().astype(np.uint32), s[2], s[3], s[4])


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    warm = int(cfg.warmup * cfg.steps) if cfg.warmup < 1 else int(cfg.warmup)

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.decay == "constant":
            return 1.0
        frac = min(1.0, (step - warm) / max(1, cfg.steps - warm))
        if cfg.decay == "cosine":
            return 0.5 * (1 + math.cos(math.pi * frac))
        return max(0.0, 1.0 - frac)

    return f


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, params=None) -> torch.optim.Optimizer:
    """AdamW (no decay on biases/LayerNorm), optionally with lazy embedding rows and/or
    wrapped in Lookahead (Lookahead(LazyRows(AdamW)))."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if params is not None:
        keep = {id(p) for p in params}
        named = [(n, p) for n, p in named if id(p) in keep]
    decay = [p for n, p in named if p.ndim >= 2 and "LayerNorm" not in n and "norm" not in n.lower()]
    nodecay = [p for n, p in named if not (p.ndim >= 2 and "LayerNorm" not in n and "norm" not in n.lower())]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": nodecay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    if cfg.lazy_embeddings:
        opt = LazyRows(opt, embedding_weights(model))
    return Lookahead(opt, cfg.la_k, cfg.la_alpha) if cfg.lookahead else opt


class Trainer:
    """Run ``cfg.steps`` optimizer steps of ``loss_fn(model, batch) -> (loss, metrics)``."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainConfig,
        loss_fn: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, dict[str, float]]],
        batches: Callable[[int], Iterator[Any]],
        *,
        eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        export_fn: Callable[[torch.nn.Module, Path], None] | None = None,
        params: list[torch.nn.Parameter] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.cfg = cfg
        self.rank, self.world, local = dist_info()
        self._owns_group = self.world > 1 and not dist.is_initialized()
        if self._owns_group:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        if device is None:
            device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        self.device = device
        self.model = model.to(device)
        self.loss_fn = loss_fn
        self.batches = batches
        self.eval_fn = eval_fn
        self.export_fn = export_fn
        self.out = Path(cfg.out)
        self.ckpt_path = self.out / "checkpoint"
        self.opt = optimizer or build_optimizer(self.model, cfg, params)
        inner = self.opt
        while hasattr(inner, "inner"):  # Lookahead / LazyRows wrappers
            inner = inner.inner
        self.sched = torch.optim.lr_scheduler.LambdaLR(inner, lr_lambda(cfg))
        self.step = 0
        self.micro = 0  # global micro-batch index = data position
        self.best: float | None = None
        self.history: list[dict[str, float]] = []
        bf16 = cfg.bf16 if cfg.bf16 is not None else device.type == "cuda"
        self.autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        )
        self.ddp_model = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp_model = DDP(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self._stop = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ checkpointing
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng": _rng_state(),
            "step": self.step,
            "micro": self.micro,
            "best": self.best,
            "history": self.history,
            "config": asdict(self.cfg),
        }

    def save(self) -> None:
        if self.is_main:
            save_checkpoint(self.ckpt_path, self.state())
        if self.world > 1:
            dist.barrier()

    def resume(self) -> bool:
        st = load_checkpoint(self.ckpt_path)
        if st is None:
            return False
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        _set_rng_state(st["rng"])
        self.step, self.micro, self.best = st["step"], st["micro"], st["best"]
        self.history = st["history"]
        if self.is_main:
            log.info("resumed from %s at step %d", self.ckpt_path, self.step)
        return True

    # ------------------------------------------------------------------ evaluation
    def _slow(self):  # noqa: ANN202 - context manager
        """Swap Lookahead's slow weights into the model for the block (no-op otherwise)."""
        return self.opt.slow_weights() if isinstance(self.opt, Lookahead) else nullcontext()

    def evaluate(self, slow: bool = True) -> dict[str, float]:
        """``eval_fn`` on the model (on Lookahead's slow weights unless ``slow`` is false)."""
        if self.eval_fn is None:
            return {}
        self.model.eval()
        with self._slow() if slow else nullcontext(), torch.no_grad(), self.autocast:
            metrics = self.eval_fn(self.model)
        self.model.train()
        return metrics

    def _maybe_best(self, metrics: dict[str, float]) -> None:
        key = self.cfg.best_metric
        if key is None or key not in metrics or not self.is_main:
            return
        v = metrics[key]
        better = self.best is None or (v > self.best if self.cfg.greater_is_better else v < self.best)
        if better:
            self.best = v
            if self.export_fn is not None:
                with self._slow():
                    self.export_fn(self.model, self.out / "best")

    # ------------------------------------------------------------------ checkpoint averaging
    def _snapshot(self) -> None:
        """Keep the current (slow) weights for averaging; only the last ``average_last`` stay."""
        n = self.cfg.average_last
        if not n or not self.is_main:
            return
        snaps = self.out / "snapshots"
        with self._slow():
            save_checkpoint(snaps / f"step-{self.step:09d}", {"model": self.model.state_dict(), "step": self.step})
        for old in sorted(snaps.glob("step-*"))[:-n]:
            shutil.rmtree(old, ignore_errors=True)

    def _export_average(self) -> dict[str, Any] | None:
        """Evaluate and export the mean of the kept snapshots (``OUT/averaged``); the trained
        weights are restored afterwards."""
        snaps = sorted((self.out / "snapshots").glob("step-*")) if self.cfg.average_last else []
        if len(snaps) < 2 or not self.is_main:
            return None
        keep = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(average_model_states(snaps))
        metrics = self.evaluate(slow=False)
        rec = {"step": self.step, "eval": metrics, "averaged": [p.name for p in snaps]}
        self._log(rec)
        if self.export_fn is not None:
            self.export_fn(self.model, self.out / "averaged")
        self.model.load_state_dict(keep)
        return rec

    # ------------------------------------------------------------------ main loop
    def _on_signal(self, signum, frame) -> None:  # noqa: ANN001
        self._stop = True

    def fit(self, resume: bool = False) -> dict[str, Any]:
        cfg = self.cfg
        if not (resume and self.resume()):
            seed_all(cfg.seed + self.rank)
        self.out.mkdir(parents=True, exist_ok=True)
        old = signal.signal(signal.SIGTERM, self._on_signal) if self._main_thread() else None
        t0 = time.time()
        self.model.train()
        pbar = None
        if cfg.progress and self.is_main:
            from tqdm.auto import tqdm

            pbar = tqdm(total=cfg.steps, initial=self.step, desc="train", dynamic_ncols=True)
        stream = self.batches(self.micro)
        acc_loss, acc_n, acc_metrics = 0.0, 0, {}
        try:
            while self.step < cfg.steps and not self._stop:
                self.opt.zero_grad(set_to_none=True)
                step_loss = 0.0
                for k in range(cfg.grad_accum):
                    batch = self._next_for_rank(stream)
                    if batch is None:
                        stream = self.batches(self.micro)  # epoch boundary: restart the stream
                        batch = self._next_for_rank(stream)
                        if batch is None:
                            raise RuntimeError("training data is empty")
                    sync = k == cfg.grad_accum - 1 or self.world == 1
                    ctx = nullcontext() if sync or not hasattr(self.ddp_model, "no_sync") else self.ddp_model.no_sync()
                    with ctx:
                        with self.autocast:
                            loss, metrics = self.loss_fn(self.ddp_model, batch)
                        if loss.requires_grad:  # e.g. a Theseus batch that ran only frozen modules
                            (loss / cfg.grad_accum).backward()
                    step_loss += float(loss.detach()) / cfg.grad_accum
                    for m, v in metrics.items():
                        acc_metrics[m] = acc_metrics.get(m, 0.0) + float(v) / cfg.grad_accum
                if cfg.clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
                self.opt.step()
                self.sched.step()
                self.step += 1
                acc_loss += step_loss
                acc_n += 1
                self.history.append({"step": self.step, "loss": step_loss})
                if pbar is not None:
                    pbar.update(1)
                    pbar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{self.sched.get_last_lr()[0]:.2e}")
                if self.step % cfg.log_every == 0 and self.is_main:
                    rec = {"step": self.step, "loss": acc_loss / acc_n, "lr": self.sched.get_last_lr()[0],
                           "elapsed_s": round(time.time() - t0, 1)}
                    rec.update({m: v / acc_n for m, v in acc_metrics.items()})
                    self._log(rec)
                    acc_loss, acc_n, acc_metrics = 0.0, 0, {}
                if cfg.eval_every and self.step % cfg.eval_every == 0:
                    metrics = self.evaluate()
                    if metrics and self.is_main:
                        self._log({"step": self.step, "eval": metrics})
                        self._maybe_best(metrics)
                    self._snapshot()
                if cfg.save_every and self.step % cfg.save_every == 0:
                    self.save()
                if cfg.max_minutes and time.time() - t0 > cfg.max_minutes * 60:
                    log.info("time limit reached at step %d", self.step)
                    break
        finally:
            if pbar is not None:
                pbar.close()
            if old is not None:
                signal.signal(signal.SIGTERM, old)
        self.save()
        final, averaged = {}, None
        if self.step >= cfg.steps:
            final = self.evaluate()
            if final and self.is_main:
                self._log({"step": self.step, "eval": final, "final": True})
                self._maybe_best(final)
            self._snapshot()
            averaged = self._export_average()
        if self.export_fn is not None and self.is_main:
            with self._slow():
                self.export_fn(self.model, self.out)
        if self._owns_group:
            # every rank waits for rank 0's export, then the group is torn down before the
            # processes exit (a rank exiting with live gloo threads can abort with SIGABRT)
            dist.barrier()
            dist.destroy_process_group()
        # interrupted: stopped by SIGTERM (checkpoint saved; rerun with resume to finish)
        out = {"step": self.step, "eval": final, "done": self.step >= cfg.steps,
               "interrupted": self._stop and self.step < cfg.steps}
        if averaged is not None:
            out["averaged"] = averaged["eval"]
        return out

    def _next_for_rank(self, stream: Iterator[Any]) -> Any:
        while True:
            try:
                b = next(stream)
            except StopIteration:
                return None
            idx = self.micro
            self.micro += 1
            if idx % self.world == self.rank:
                return b

    def _log(self, rec: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        log.info("%s", rec)

    @staticmethod
    def _main_thread() -> bool:
        import threading

        return threading.current_thread() is threading.main_thread()
