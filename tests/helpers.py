"""Shared test helpers: tiny random encoders, paths to ../shared/data, the paper-schedule oracle."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZHTOOLS_SHARED_DATA", ROOT.parent / "shared" / "data"))

SAMPLE_TEXT = (
    "中华人民共和国成立于1949年。北京是中国的首都，也是一座历史悠久的城市！"
    "今天天气很好，我们去公园散步吧？Hello world, 2024年的GDP增长了5.2%。"
)


def tiny_vocab() -> list[str]:
    from zhtools.text.tokenizer import build_vocab

    return build_vocab([SAMPLE_TEXT * 3, "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会"], min_count=1)


def tiny_tokenizer():
    from zhtools.text.tokenizer import tokenizer_from_vocab

    return tokenizer_from_vocab(tiny_vocab())


def tiny_encoder(kind: str = "bert", tmp: Path | None = None, layers: int = 2, hidden: int = 32):
    """A random tiny encoder (saved to ``tmp`` and loaded back through load_encoder)."""
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    from zhtools.models import load_encoder, save_model

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    common = dict(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                  num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64,
                  pad_token_id=tok.pad_id)
    if kind == "bert":
        model = BertModel(BertConfig(**common))
    else:
        common["max_position_embeddings"] = 66
        model = RobertaModel(RobertaConfig(**common))
    import tempfile

    out = Path(tmp or tempfile.mkdtemp()) / kind
    save_model(model, tok, out)
    return load_encoder(out)


@torch.inference_mode()
def oracle_matrix(enc, units, layer: int = -1) -> np.ndarray:
    """The paper's literal schedule: for each unit i one batch of n sequences, row j masks
    units i and j (row i masks i only); F[i][j] = ||h_i(row i) - h_i(row j)||."""
    from zhtools.probe.engine import _assign_tokens

    tok = enc.tokenizer
    e = tok.encode(units.text)
    toks = [[t + 1 for t in tk] for tk in _assign_tokens(e.offsets, units.spans)]
    base = tok.with_specials(e.ids)
    n = len(units.spans)
    F = np.zeros((n, n))
    for i in range(n):
        rows = []
        for j in range(n):
            ids = list(base)
            for t in toks[i] + toks[j]:
                ids[t] = tok.mask_id
            rows.append(ids)
        x = torch.tensor(rows)
        out = enc.model(input_ids=x, attention_mask=torch.ones_like(x), output_hidden_states=True)
        h = out.hidden_states[layer]
        v = h[:, toks[i], :].mean(1)
        F[i] = torch.linalg.vector_norm(v - v[i], dim=-1).numpy()
    return F


def tiny_bert_folder(out: Path, layers: int = 2, hidden: int = 32) -> Path:
    """Save a random tiny ``BertModel`` + the tiny tokenizer as a plain HF folder at ``out``."""
    from transformers import BertConfig, BertModel

    from zhtools.models import save_model

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    m = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                             num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64))
    save_model(m, tok, out)
    return out


def tiny_mlm_folder(out: Path, layers: int = 2, hidden: int = 32) -> Path:
    """Save a random tiny ``BertForMaskedLM`` (encoder + masked-LM head) + the tiny tokenizer as
    a plain HF folder at ``out``."""
    from transformers import BertConfig, BertForMaskedLM

    from zhtools.models import save_model

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    m = BertForMaskedLM(BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                   num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64))
    return save_model(m, tok, out)
