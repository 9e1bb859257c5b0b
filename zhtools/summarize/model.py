"""Bidirectional seq2seq summarizer: an HF encoder + a Transformer decoder shared by a
left-to-right (L2R) and a right-to-left (R2L) direction with synchronous bidirectional attention.

Decoder rows are stacked ``[L2R rows; R2L rows]`` so row ``i`` of one half is paired with row
``i`` of the other (SB-NMT's pairing by index). In each self-attention layer

    H = Attn(Q, K_own, V_own) + lambda * tanh(Attn(Q, K_other, V_other))

under causal masks. Training masks (``leak="none"``, default): position t of one direction may
attend the other direction's positions s <= min(t, n - 1 - t) (n = title length), i.e. only
states that have consumed tokens strictly beyond the token t predicts, so neither path reveals
the target. One hop is not enough when every layer interacts: information then travels
L2R(t) <- L2R(t' < t) <- R2L(s') with s' up to ~n/2 and reaches the target from the second half
on. So with ``leak="none"`` only the top layer carries the cross-direction term
(``interact="top"``, the default); the layers below are pure single-direction layers, and the
one-hop mask provably hides the target (tests/test_summarize.py checks it by perturbing every
title token). ``leak="gold"`` is the naive gold-vs-gold scheme (s <= t; with ``interact="all"``
it is SB-NMT's / Su's architecture trained without pseudo targets), kept for comparison. At inference the other direction's tokens are the model's own guesses and the
plain causal mask (s <= t) is used.

``halves=True`` adds SBSG-style meet-in-the-middle decoding ("sequence generation from both sides
to the middle", Zhou et al. 2019): besides the plain full-length L2R and R2L directions (trained
without interaction, so ``l2r``/``r2l`` decoding of the same model is an ordinary single-direction
baseline), two more direction embeddings train the L2R half to emit the first ceil(n/2) tokens and
the R2L half the last floor(n/2) tokens reversed, each ending with EOS, interacting in every layer
(s <= t, and only over the partner's real inputs). The halves are disjoint, so gold-vs-gold
teacher forcing leaks nothing: no position can read its own target from the other half. Decoding
then takes ~n/2 steps instead of n. Output embeddings are tied to the encoder's word embeddings;
an optional copy gate mixes the vocabulary distribution with the last layer's cross-attention
over source tokens (pointer-generator style).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NEG = -1e9


@dataclass
class DecoderConfig:
    layers: int = 3
    heads: int = 4
    ffn: int = 1024
    max_len: int = 64  # decoder positions (title tokens + 1)
    dropout: float = 0.1
    lam: float = 0.5  # weight of the other direction's attention (SB-NMT uses 0.1)
    copy: bool = True
    bidirectional: bool = True  # False: plain L2R (or R2L) model, same code
    interact: str = "top"  # layers with the cross-direction term: top | all
    halves: bool = False  # also train meet-in-the-middle halves (directions 2 and 3)


class BiAttention(nn.Module):
    """Multi-head self-attention over own-direction keys plus the tanh-squashed attention over
    the paired row's (other direction's) keys; optional K/V cache for incremental decoding."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.drop = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.dh).transpose(1, 2)

    def forward(self, x: torch.Tensor, own_mask: torch.Tensor, other_mask: torch.Tensor | None,
                lam: float, cache: dict[str, torch.Tensor] | None = None, all_pairs: int = 0) -> torch.Tensor:
        """``all_pairs = K > 1`` (decoding): rows come in groups of K hypotheses of one direction
        and source, and each row averages the tanh-squashed attention over all K hypotheses of
        the other direction (SB-NMT's averaging variant) instead of its index partner's."""
        q, k, v = (self._split(t) for t in self.qkv(x).chunk(3, dim=-1))
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        p = self.drop if self.training else 0.0
        own = F.scaled_dot_product_attention(q, k, v, attn_mask=own_mask, dropout_p=p)
        if other_mask is not None:
            ko, vo = _swap_halves(k), _swap_halves(v)  # row i <-> row i of the other half
            any_key = other_mask.any(-1, keepdim=True)  # rows with no allowed key get 0
            safe = other_mask | ~any_key
            if all_pairs > 1:
                oth = _mean_over_partners(q, ko, vo, safe, all_pairs)
            else:
                oth = torch.tanh(F.scaled_dot_product_attention(q, ko, vo, attn_mask=safe, dropout_p=p))
            own = own + lam * oth * any_key
        b, _, t, _ = own.shape
        return self.out(own.transpose(1, 2).reshape(b, t, -1))


class CrossAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def memory(self, enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, s, _ = enc.shape
        k, v = self.kv(enc).view(b, s, 2, self.h, self.dh).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, mem: tuple[torch.Tensor, torch.Tensor], src_mask: torch.Tensor,
                want_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, _ = x.shape
        q = self.q(x).view(b, t, self.h, self.dh).transpose(1, 2)
        k, v = mem
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.dh)
        att = att.masked_fill(~src_mask[:, None, None, :], NEG).softmax(-1)
        out = self.drop(att) @ v
        out = self.out(out.transpose(1, 2).reshape(b, t, -1))
        return out, (att.mean(1) if want_weights else None)


class DecoderLayer(nn.Module):
    def __init__(self, d: int, cfg: DecoderConfig) -> None:
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = BiAttention(d, cfg.heads, cfg.dropout)
        self.cross = CrossAttention(d, cfg.heads, cfg.dropout)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, own_mask, other_mask, lam, mem, src_mask, cache=None, want_weights=False,  # noqa: ANN001, ANN201
                all_pairs=0):  # noqa: ANN001
        x = x + self.drop(self.self_attn(self.ln1(x), own_mask, other_mask, lam, cache, all_pairs))
        c, w = self.cross(self.ln2(x), mem, src_mask, want_weights)
        x = x + self.drop(c)
        x = x + self.drop(self.ffn(self.ln3(x)))
        return x, w


class BiSeq2Seq(nn.Module):
    """Encoder (any HF encoder) + bidirectional decoder. Token ids share the encoder's tokenizer:
    [CLS] starts a target, [SEP] ends it; the direction is a learned embedding."""

    def __init__(self, encoder: nn.Module, cfg: DecoderConfig, bos_id: int, eos_id: int, pad_id: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.cfg = cfg
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        emb = encoder.get_input_embeddings()
        d = emb.weight.shape[1]
        self.d = d
        self.pos = nn.Embedding(cfg.max_len, d)
        self.direction = nn.Embedding(4 if cfg.halves else 2, d)
        self.layers = nn.ModuleList([DecoderLayer(d, cfg) for _ in range(cfg.layers)])
        self.ln = nn.LayerNorm(d)
        self.out_bias = nn.Parameter(torch.zeros(emb.weight.shape[0]))
        self.copy_gate = nn.Linear(2 * d, 1) if cfg.copy else None
        self.drop = nn.Dropout(cfg.dropout)

    # -------------------------------------------------------------------------- pieces
    @property
    def word_emb(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=src, attention_mask=src_mask.long()).last_hidden_state

    def memories(self, enc: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [layer.cross.memory(enc) for layer in self.layers]

    def _embed(self, tokens: torch.Tensor, dirs: torch.Tensor, start: int) -> torch.Tensor:
        t = tokens.shape[1]
        pos = torch.arange(start, start + t, device=tokens.device).clamp(max=self.cfg.max_len - 1)
        x = self.word_emb(tokens) + self.pos(pos)[None] + self.direction(dirs)[:, None]
        return self.drop(x)

    def _output(self, h: torch.Tensor, ctx_w: torch.Tensor | None, src: torch.Tensor,
                enc_ctx: torch.Tensor | None) -> torch.Tensor:
        """Log-probabilities over the vocabulary (with the copy mixture when enabled)."""
        logits = h @ self.word_emb.weight.t() + self.out_bias
        if self.copy_gate is None or ctx_w is None:
            return logits.float().log_softmax(-1)
        g = torch.sigmoid(self.copy_gate(torch.cat([h, enc_ctx], -1))).float()
        p_vocab = logits.float().softmax(-1) * g
        idx = src[:, None, :].expand(-1, h.shape[1], -1)
        p = p_vocab.scatter_add(-1, idx, ctx_w.float() * (1 - g))
        return (p + 1e-10).log()

    def run(self, tokens: torch.Tensor, dirs: torch.Tensor, own_mask: torch.Tensor,
            other_mask: torch.Tensor | None, mems, src: torch.Tensor, src_mask: torch.Tensor,
            enc: torch.Tensor, start: int = 0, caches: list[dict] | None = None,
            all_pairs: int = 0) -> torch.Tensor:
        x = self._embed(tokens, dirs, start)
        w = None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            om = other_mask if (last or self.cfg.interact == "all") else None
            x, w_i = layer(x, own_mask, om, self.cfg.lam, mems[i], src_mask,
                           None if caches is None else caches[i], want_weights=last and self.copy_gate is not None,
                           all_pairs=all_pairs)
            w = w_i if last else w
        h = self.ln(x)
        enc_ctx = (w @ enc) if w is not None else None
        return self._output(h, w, src, enc_ctx)

    # -------------------------------------------------------------------------- training
    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt: torch.Tensor,
                tgt_len: torch.Tensor, leak: str = "none", label_smoothing: float = 0.0,
                directions: str = "both") -> tuple[torch.Tensor, dict[str, float]]:
        """Teacher-forced loss. ``tgt`` (B, n_max): title ids (no specials), ``tgt_len`` (B,).
        Returns (sum of the directions' token-mean cross-entropies, metrics)."""
        use = ["l2r", "r2l"] if directions == "both" else [directions]
        rev = _reverse(tgt, tgt_len, tgt_len, self.pad_id)  # position j holds y[n-1-j]
        seqs = {"l2r": tgt, "r2l": rev}
        full = [(u, seqs[u], tgt_len, 0 if u == "l2r" else 1) for u in use]
        interact = None
        if self.cfg.bidirectional and len(use) == 2 and not self.cfg.halves:
            if leak == "none" and self.cfg.interact != "top":
                raise ValueError('leak="none" needs interact="top" (see the module docstring)')
            if leak not in ("none", "gold"):
                raise ValueError(f"unknown leak scheme {leak!r} (none | gold)")
            interact = leak
        enc = self.encode(src, src_mask)
        metrics: dict[str, float] = {}
        loss = self._teacher(enc, src, src_mask, full, interact, label_smoothing, metrics)
        if self.cfg.halves and len(use) == 2:
            m = (tgt_len + 1) // 2  # L2R half: y[:m]; R2L half: y[n-1] .. y[m]
            first = tgt[:, : max(1, int(m.max()))]
            first = first.masked_fill(torch.arange(first.shape[1], device=tgt.device)[None] >= m[:, None],
                                      self.pad_id)
            second = _reverse(tgt, tgt_len, tgt_len - m, self.pad_id)[:, : max(1, int((tgt_len - m).max()))]
            halves = [("l2r_half", first, m, 2), ("r2l_half", second, tgt_len - m, 3)]
            loss = loss + self._teacher(enc, src, src_mask, halves, "pair", label_smoothing, metrics)
        return loss, metrics

    def _teacher(self, enc: torch.Tensor, src: torch.Tensor, src_mask: torch.Tensor,
                 parts: list[tuple[str, torch.Tensor, torch.Tensor, int]], interact: str | None,
                 label_smoothing: float, metrics: dict[str, float]) -> torch.Tensor:
        """Cross-entropy of one decoder pass over ``parts`` = [(name, tokens (B, L), lengths,
        direction id)]; two parts are paired rows. ``interact``: None (no cross term), "none"
        (leak-free one-hop mask), "gold" (s <= t) or "pair" (s <= t over the partner's inputs)."""
        dev = src.device
        B = src.shape[0]
        T = max(p[1].shape[1] for p in parts) + 1
        bos = torch.full((B, 1), self.bos_id, device=dev, dtype=torch.long)
        inp, lab = [], []
        for _, toks, lens, _ in parts:
            toks = F.pad(toks, (0, T - 1 - toks.shape[1]), value=self.pad_id)
            inp.append(torch.cat([bos, toks], 1))
            y = torch.cat([toks, torch.full((B, 1), self.pad_id, device=dev, dtype=torch.long)], 1)
            y = y.scatter(1, lens[:, None], self.eos_id)  # EOS right after the tokens
            ok = torch.arange(T, device=dev)[None] <= lens[:, None]
            lab.append(y.masked_fill(~ok, -100))
        inp, labels = torch.cat(inp), torch.cat(lab)
        R = inp.shape[0]
        dirs = torch.cat([torch.full((B,), p[3], device=dev) for p in parts])
        ar = torch.arange(T, device=dev)
        causal = ar[None, :] <= ar[:, None]
        own_mask = causal[None, None].expand(R, 1, T, T)
        other = None
        if interact is not None:
            if len(parts) != 2:
                raise ValueError("interaction needs two paired directions")
            other = causal[None].expand(R, T, T).clone()
            if interact == "none":
                limit = parts[0][2][:, None] - 1 - ar[None]  # s <= n - 1 - t
                other &= (ar[None, None, :] <= limit[:, :, None]).repeat(2, 1, 1)
            elif interact == "pair":  # only the partner's real inputs (BOS + its tokens)
                partner = torch.cat([parts[1][2], parts[0][2]])
                other &= ar[None, None, :] <= partner[:, None, None]
            other = other[:, None]
        n = len(parts)
        enc_r = enc.repeat(n, 1, 1)
        src_r, mask_r = src.repeat(n, 1), src_mask.repeat(n, 1)
        logp = self.run(inp, dirs, own_mask, other, self.memories(enc_r), src_r, mask_r, enc_r)
        nll = F.nll_loss(logp.reshape(-1, logp.shape[-1]), labels.reshape(-1), ignore_index=-100,
                         reduction="none").view(R, T)
        if label_smoothing:
            smooth = -logp.mean(-1)
            nll = (1 - label_smoothing) * nll + label_smoothing * smooth * (labels != -100)
        loss = 0.0
        for k, (name, *_rest) in enumerate(parts):
            rows = slice(k * B, (k + 1) * B)
            ce = nll[rows].sum() / (labels[rows] != -100).sum().clamp(min=1)
            loss = loss + ce
            metrics[f"ce_{name}"] = float(ce.detach())
        return loss

    # -------------------------------------------------------------------------- inference
    def start_decoding(self, src: torch.Tensor, src_mask: torch.Tensor, rows_per_dir: int,
                       dirs: list[int]) -> dict[str, Any]:
        """State for incremental decoding: rows are ``[dir0 rows; dir1 rows]``, each block
        ``B * rows_per_dir`` (source-major)."""
        enc = self.encode(src, src_mask)
        nd = len(dirs)
        rep = lambda t: t.repeat_interleave(rows_per_dir, 0).repeat(nd, *([1] * (t.dim() - 1)))  # noqa: E731
        enc_r, src_r, mask_r = rep(enc), rep(src), rep(src_mask)
        d = torch.tensor(dirs, device=src.device).repeat_interleave(enc.shape[0] * rows_per_dir)
        return {"enc": enc_r, "src": src_r, "mask": mask_r, "mems": self.memories(enc_r),
                "caches": [{} for _ in self.layers], "dirs": d, "t": 0,
                "bidir": self.cfg.bidirectional and nd == 2}

    def step(self, state: dict[str, Any], tokens: torch.Tensor,
             valid: torch.Tensor | None = None) -> torch.Tensor:
        """Feed one token per row (cached); returns next-token log-probs (rows, V).
        ``valid`` (rows, t + 1): which fed positions of each row its partner may attend."""
        t = state["t"]
        R = tokens.shape[0]
        own = torch.ones(R, 1, 1, t + 1, dtype=torch.bool, device=tokens.device)
        other = _partner_mask(own, valid) if state["bidir"] else None
        out = self.run(tokens[:, None], state["dirs"], own, other, state["mems"], state["src"],
                       state["mask"], state["enc"], start=t, caches=state["caches"],
                       all_pairs=state.get("all_pairs", 0))
        state["t"] = t + 1
        return out[:, -1]

    def step_uncached(self, state: dict[str, Any], prefix: torch.Tensor,
                      valid: torch.Tensor | None = None) -> torch.Tensor:
        """Same as :meth:`step` but recomputes the whole prefix (for testing the cache)."""
        R, T = prefix.shape
        causal = torch.ones(T, T, dtype=torch.bool, device=prefix.device).tril()[None, None].expand(R, 1, T, T)
        other = _partner_mask(causal, valid) if state["bidir"] else None
        out = self.run(prefix, state["dirs"], causal, other, state["mems"], state["src"],
                       state["mask"], state["enc"], all_pairs=state.get("all_pairs", 0))
        return out[:, -1]

    @staticmethod
    def reorder(state: dict[str, Any], index: torch.Tensor) -> None:
        for c in state["caches"]:
            for k in list(c):
                c[k] = c[k].index_select(0, index)

    # -------------------------------------------------------------------------- save / load
    def save(self, out: str | Path, tokenizer=None, info: dict | None = None) -> None:  # noqa: ANN001
        from safetensors.torch import save_file

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        enc_dir = out / "encoder"
        from zhtools.models import save_model

        save_model(self.encoder, tokenizer, enc_dir)
        dec = {k: v.detach().contiguous().clone() for k, v in self.state_dict().items()
               if not k.startswith("encoder.")}
        save_file(dec, str(out / "decoder.safetensors"))
        meta = {"decoder": asdict(self.cfg), "bos_id": self.bos_id, "eos_id": self.eos_id,
                "pad_id": self.pad_id, **(info or {})}
        (out / "summarizer.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> tuple[BiSeq2Seq, Any, dict]:
        from safetensors.torch import load_file

        from zhtools.models import load_encoder

        path = Path(path)
        meta = json.loads((path / "summarizer.json").read_text())
        enc = load_encoder(path / "encoder", device=device, dtype=torch.float32)
        model = cls(enc.model, DecoderConfig(**meta["decoder"]), meta["bos_id"], meta["eos_id"], meta["pad_id"])
        missing, unexpected = model.load_state_dict(load_file(str(path / "decoder.safetensors")), strict=False)
        bad = [k for k in missing if not k.startswith("encoder.")]
        if bad or unexpected:
            raise ValueError(f"{path}: decoder weights do not match (missing {bad}, unexpected {unexpected})")
        return model.to(device).eval(), enc.tokenizer, meta


def _reverse(tgt: torch.Tensor, n: torch.Tensor, k: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Row-wise: position j < k holds tgt[n - 1 - j] (the last k tokens reversed), pad after."""
    ar = torch.arange(tgt.shape[1], device=tgt.device)
    idx = (n[:, None] - 1 - ar[None]).clamp(min=0)
    return torch.where(ar[None] < k[:, None], tgt.gather(1, idx), torch.full_like(tgt, pad_id))


def _partner_mask(mask: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``mask`` restricted to the keys the paired row (other half of the rows) marks valid."""
    if valid is None:
        return mask
    return mask & _swap_halves(valid)[:, None, None, :]


def _mean_over_partners(q: torch.Tensor, ko: torch.Tensor, vo: torch.Tensor, mask: torch.Tensor,
                        k: int) -> torch.Tensor:
    """Mean over the ``k`` other-direction rows of each row's group of tanh(attention): ``q``
    (R, h, tq, dh); ``ko``/``vo`` (R, h, T, dh), already swapped so that group g of rows holds
    the other direction's hypotheses for the same source; ``mask`` (R, 1, tq|1, T)."""
    r, h, tq, dh = q.shape
    g = r // k
    att = (q.view(g, k, 1, h, tq, dh) @ ko.view(g, 1, k, h, -1, dh).transpose(-1, -2)) / math.sqrt(dh)
    att = att.masked_fill(~mask.view(g, k, 1, *mask.shape[1:]), float("-inf")).softmax(-1)
    return torch.tanh(att @ vo.view(g, 1, k, h, -1, dh)).mean(2).view(r, h, tq, dh)


def _swap_halves(x: torch.Tensor) -> torch.Tensor:
    """Rows ``[A; B]`` -> ``[B; A]``: each row's partner in the other direction (index pairing)."""
    half = x.shape[0] // 2
    return torch.cat([x[half:], x[:half]])
