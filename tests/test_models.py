"""load_encoder: tiny random models from a config, clear errors, safetensors only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_encoder

from zhtools.models import ModelNotFoundError, load_encoder


def test_load_tiny_bert(tmp_path: Path) -> None:
    enc = tiny_encoder("bert", tmp_path)
    assert not enc.model.training
    assert enc.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (tmp_path / "bert" / "model.safetensors").exists()
    assert not list((tmp_path / "bert").glob("*.bin"))
    ids = torch.tensor([enc.tokenizer.with_specials(enc.tokenizer.encode("北京").ids)])
    out = enc.model(input_ids=ids).last_hidden_state
    assert out.shape == (1, 4, 32)
    assert enc.max_tokens == 64


def test_missing_folder_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_encoder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_encoder(tmp_path / "empty")


def test_offline_hub_fails_fast(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.time()
    with pytest.raises(ModelNotFoundError, match="local model folder"):
        load_encoder("some-org/definitely-not-cached-model")
    assert time.time() - t < 30
