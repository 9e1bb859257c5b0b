"""Load encoders: ``None`` = the shipped default in ``data/models/``; otherwise a HF name or
a local folder through the Auto classes. Weights are read from safetensors only."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from zhtools.text.tokenizer import ZhTokenizer

# data/models/ at the repo root (development checkout) or next to the installed package.
_PKG = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = Path(os.environ.get("ZHTOOLS_MODELS", _PKG.parent / "data" / "models"))
DEFAULT_ENCODER = "zhtools-char-small"


class ModelNotFoundError(RuntimeError):
    """The requested encoder cannot be found locally and cannot be downloaded."""


def default_model_path(name: str = DEFAULT_ENCODER) -> Path:
    return DEFAULT_MODEL_DIR / name


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast is
    ~3x faster than fp32 for our encoders; emulated bf16 (plain AVX512) is not faster."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = set(f.read().split())
    except OSError:  # not Linux: no cheap reliable check, stay in fp32
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class LoadedEncoder:
    """An encoder model (eval mode), its zhtools tokenizer, device and compute dtype."""

    model: torch.nn.Module
    tokenizer: ZhTokenizer
    device: torch.device
    dtype: torch.dtype
    name: str

    @property
    def max_tokens(self) -> int:
        """Longest input (specials included) the position embeddings allow."""
        cfg = self.model.config
        n = getattr(cfg, "max_position_embeddings", 512)
        if getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            n -= 2  # RoBERTa positions start at padding_idx + 1
        return int(n)


def _resolve(name_or_path: str | os.PathLike | None) -> tuple[str, bool]:
    if name_or_path is None:
        p = default_model_path()
        if not (p / "config.json").exists():
            raise ModelNotFoundError(
                f"no shipped default encoder at {p}: train one with `zhtools pretrain` "
                "or pass a local model folder (model=... / --model DIR)"
            )
        return str(p), True
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise ModelNotFoundError(f"{p} is not a model folder (no config.json)")
        return str(p), True
    if str(name_or_path).startswith((".", "/", "~")) or os.sep in str(name_or_path).strip("/").replace("/", "", 1):
        raise ModelNotFoundError(f"model folder {p} does not exist")
    return str(name_or_path), False


@lru_cache(maxsize=1)
def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP probe of the hub endpoint, so an offline machine fails in seconds."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextmanager
def quiet_hf() -> Iterator[None]:
    """Silence transformers' info logs and its per-file progress bars inside the block."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def _from_pretrained(auto_cls, ref: str, local: bool, **kw):
    """Auto-class load that never hangs: cache first, then the hub with short timeouts."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        return auto_cls.from_pretrained(ref, local_files_only=True, **kw)
    except (OSError, ValueError) as first:
        if local or os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ModelNotFoundError(
                f"cannot load '{ref}': {first}. Pass a local model folder instead."
            ) from first
    if not _hub_reachable():
        raise ModelNotFoundError(
            f"cannot load '{ref}': not in the local cache and the model hub is unreachable. "
            "Download it elsewhere and pass the local folder."
        )
    try:
        return auto_cls.from_pretrained(ref, **kw)
    except Exception as err:  # network errors come in many types
        raise ModelNotFoundError(
            f"cannot load '{ref}' (not cached and the model hub is unreachable: "
            f"{type(err).__name__}). Download it elsewhere and pass the local folder."
        ) from err


def load_encoder(
    name_or_path: str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    head: str | None = None,
) -> LoadedEncoder:
    """Load an encoder for inference.

    ``head``: ``None`` (bare encoder, ``AutoModel``), ``"mlm"`` (``AutoModelForMaskedLM``),
    ``"cls"`` (``AutoModelForSequenceClassification``) or ``"token-cls"``. CUDA + bf16 when a GPU exists, else
    CPU + fp32. The model is in eval mode with gradients disabled.
    """
    from transformers import (
        AutoModel,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    ref, local = _resolve(name_or_path)
    auto = {None: AutoModel, "mlm": AutoModelForMaskedLM, "cls": AutoModelForSequenceClassification,
            "token-cls": AutoModelForTokenClassification}[head]
    dev = pick_device(device)
    if dtype is None:
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    with quiet_hf():  # MLM heads/pooler mismatches are expected for AutoModel
        hf_tok = _from_pretrained(AutoTokenizer, ref, local, use_fast=True)
        model = _from_pretrained(auto, ref, local, use_safetensors=True, dtype=dtype)
    model.to(dev).eval()
    model.requires_grad_(False)
    return LoadedEncoder(model, ZhTokenizer(hf_tok), dev, dtype, ref)


def load_trainable(name_or_path: str | os.PathLike | None, auto_cls, **kw) -> tuple[torch.nn.Module, ZhTokenizer]:
    """A model to train (fp32, CPU, train mode, all parameters trainable) and its tokenizer:
    ``auto_cls.from_pretrained(..., **kw)`` on the shipped default, a HF name or a folder (for a
    new head, e.g. ``num_labels=...``; missing head weights are expected and not reported)."""
    from transformers import AutoTokenizer

    ref, local = _resolve(name_or_path)
    with quiet_hf():
        tok = ZhTokenizer(_from_pretrained(AutoTokenizer, ref, local, use_fast=True))
        model = _from_pretrained(auto_cls, ref, local, dtype=torch.float32, use_safetensors=True, **kw)
    model.requires_grad_(True)
    return model.train(), tok


@lru_cache(maxsize=4)
def _cached_encoder(name_or_path: str | None, head: str | None) -> LoadedEncoder:
    return load_encoder(name_or_path, head=head)


_CACHE_LOCK = threading.Lock()


def cached_encoder(name_or_path: str | None = None, head: str | None = None) -> LoadedEncoder:
    """Process-wide cache so module-level helpers load each model once (thread-safe:
    concurrent first calls from a service's worker threads load it once)."""
    with _CACHE_LOCK:
        return _cached_encoder(name_or_path, head)


def save_model(model: torch.nn.Module, tokenizer: ZhTokenizer | None, out: str | os.PathLike) -> Path:
    """Save as a plain HF folder (config + model.safetensors [+ tokenizer])."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_hf():
        model.save_pretrained(str(out), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out
