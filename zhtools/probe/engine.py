"""Perturbed-masking impact matrices (Wu et al., ACL 2020), batched and windowed.

``F[i][j] = dist(h_i(x with unit i masked), h_i(x with units i and j masked))``: how much
masking unit j changes the representation of (masked) unit i. A *unit* is any character span
(a character, a word, a phrase); masking a unit masks every token overlapping it, and ``h_i``
is the mean of the chosen layer's vectors over unit i's tokens.

Schedule: the n singly-masked sequences first, then each doubly-masked sequence once, giving
both ``F[i][j]`` (read at i) and ``F[j][i]`` (read at j): n + n(n-1)/2 sequences for the full
matrix, 2n-1 for adjacent pairs only. Perturbed copies of many sentences are packed by the
shared batching layer under a padded-token budget, so memory is bounded whatever the input.

Compute: only layers up to the read one run (:func:`truncated`), and on BERT-style encoders the
forward is factorised (:meth:`ImpactEngine._factorised`): a perturbed copy differs from its
sentence only at masked positions, so the embeddings and layer 1's query/key/value projections
take one of two values per position and are computed once per sentence window; the read layer
runs only at the positions whose vectors are read (one or two units per sequence), with its key
and value projections folded into those queries (:func:`layer_at`). Exact up to float rounding
(the oracle tests hold); at layer 2 of the shipped 8-layer encoder ~1.8x the speed of the plain
truncated forward (benchmarks/results/probe_speed.md).

Long inputs: token sequences longer than the encoder window are cut into overlapping windows
(:func:`zhtools.text.windows`); each unit belongs to the window that owns its first token
(:func:`zhtools.text.stitch_ranges`, overlaps split at the midpoint), and its row of ``F`` is
read from that window. Pairs that never share a window get impact 0 (reported in
``ImpactResult.uncovered``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PretrainedConfig

from zhtools.models.loader import LoadedEncoder, cached_encoder
from zhtools.text.batching import Batch, BatchStats, pad, token_batches
from zhtools.text.tokenizer import stitch_ranges, windows

PROBE_LAYER_KEY = "zhtools_probe_layer"


def resolve_layer(model: torch.nn.Module | PretrainedConfig, layer: int | str) -> int:
    """``layer`` as an index into ``hidden_states`` (-1 = last): ``"last"`` -> -1,
    ``"middle"`` -> ``max(1, L // 2)``, ``"auto"`` -> the model's own probe layer
    (``zhtools_probe_layer`` in its config.json, set by ``python -m zhtools.train.ship
    --probe-layer``), else ``"middle"``; an int in ``-1..L`` as given (``L`` -> -1).
    ``model``: the encoder or its config."""
    config = getattr(model, "config", model)
    n = int(getattr(config, "num_hidden_layers", 0))
    if layer == "auto":
        own = getattr(config, PROBE_LAYER_KEY, None)
        layer = own if isinstance(own, int) and not isinstance(own, bool) and (not n or 0 <= own <= n) else "middle"
    if layer == "last":
        return -1
    if layer == "middle":
        return max(1, n // 2) if n else -1
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise ValueError(f"layer must be an int, 'auto', 'middle' or 'last', got {layer!r}")
    if n and not -1 <= layer <= n:
        raise ValueError(f"layer must be in -1..{n} for this {n}-layer encoder, got {layer}")
    return -1 if layer == n else layer


def truncated(model: torch.nn.Module, k: int) -> torch.nn.Module:
    """A view of ``model`` running only its first ``k`` layers (parameters shared, the original
    untouched), whose ``last_hidden_state`` is the full model's ``hidden_states[k]``; ``model``
    itself when ``k`` is -1 or the layers are not an ``encoder.layer`` ModuleList."""
    enc = getattr(model, "encoder", None)
    layers = getattr(enc, "layer", None)
    if k < 1 or not isinstance(layers, torch.nn.ModuleList) or k >= len(layers):
        return model
    m, e = copy.copy(model), copy.copy(enc)
    m._modules, e._modules = dict(model._modules), dict(enc._modules)  # copies do not alias
    e.layer = layers[:k]
    m.encoder = e
    return m


def bert_layers(model: torch.nn.Module, k: int) -> list[torch.nn.Module] | None:
    """Layers 1..``k`` of a BERT-style encoder (BERT, RoBERTa, ELECTRA: ``embeddings`` +
    ``encoder.layer`` of self-attention + feed-forward sub-modules, absolute positions), for the
    factorised forward (:func:`layer_full`, :func:`layer_at`); None for other structures (then the
    plain forward)."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    cfg = getattr(model, "config", None)
    if not isinstance(layers, torch.nn.ModuleList) or not 1 <= k <= len(layers) or cfg is None:
        return None
    if getattr(cfg, "is_decoder", False) or getattr(cfg, "position_embedding_type", "absolute") != "absolute":
        return None
    if not callable(getattr(model, "embeddings", None)):
        return None
    for layer in layers[:k]:
        att = getattr(layer, "attention", None)
        sa = getattr(att, "self", None)
        need = [(sa, ("query", "key", "value", "attention_head_size", "scaling")),
                (att, ("output",)), (layer, ("intermediate", "output"))]
        if not all(hasattr(o, a) for o, names in need for a in names):
            return None
    return list(layers[:k])


def _finish(layer: torch.nn.Module, ctx: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
    """Attention output (dense, residual, LayerNorm) and feed-forward of a BERT-style layer from
    the per-head context ``ctx`` [B, heads, m, d] and the residual input ``resid`` [B, m, H]."""
    B, _, m, _ = ctx.shape
    a = layer.attention.output(ctx.transpose(1, 2).reshape(B, m, -1), resid)
    return layer.output(layer.intermediate(a), a)


def layer_full(layer: torch.nn.Module, h: torch.Tensor, keys: torch.Tensor,
               qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """A BERT-style layer's forward (eval mode) on ``h`` [B, T, H] with key mask ``keys`` [B, T]
    (True = real token); ``qkv``: its query/key/value projections of ``h`` if already known."""
    sa = layer.attention.self
    B, T, _ = h.shape
    d = sa.attention_head_size
    q, k, v = (x.view(B, T, -1, d).transpose(1, 2)
               for x in (qkv if qkv is not None else (sa.query(h), sa.key(h), sa.value(h))))
    ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keys[:, None, None, :],
                                                           scale=sa.scaling)
    return _finish(layer, ctx, h)


def layer_at(layer: torch.nn.Module, h: torch.Tensor, keys: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """A BERT-style layer's output at positions ``pos`` [B, m] only, from the previous layer's
    states ``h`` [B, T, H] and the key mask ``keys`` [B, T]. The key and value projections are
    folded into the m queries instead of being applied at all T positions:
    ``q . (W_k x + b_k) = (W_k^T q) . x + q . b_k`` (the last term is the same for every key, so
    the softmax drops it) and ``sum_t a_t (W_v x_t + b_v) = W_v (sum_t a_t x_t) + b_v``. Same
    values as the layer's own forward at those positions (eval mode), at O(m T H) instead of
    O(T H^2) for the attention projections."""
    sa = layer.attention.self
    B, T, H = h.shape
    d = sa.attention_head_size
    m = pos.shape[1]
    hs = h.gather(1, pos[..., None].expand(-1, -1, H))
    q = sa.query(hs).view(B, m, -1, d)
    nh = q.shape[2]
    qk = torch.einsum("bmnd,ndh->bnmh", q, sa.key.weight.view(nh, d, H).to(q.dtype))
    s = torch.matmul(qk, h.transpose(1, 2)[:, None].to(qk.dtype)) * sa.scaling  # [B, nh, m, T]
    s = s.float().masked_fill(~keys[:, None, None, :], float("-inf"))
    xa = torch.matmul(s.softmax(-1).to(h.dtype), h[:, None])  # [B, nh, m, H]
    ctx = torch.einsum("bnmh,ndh->bnmd", xa, sa.value.weight.view(nh, d, H).to(xa.dtype))
    if sa.value.bias is not None:
        ctx = ctx + sa.value.bias.view(nh, 1, d).to(ctx.dtype)
    return _finish(layer, ctx, hs)


@dataclass
class Units:
    """A text and the character spans of its units (sorted, non-overlapping)."""

    text: str
    spans: list[tuple[int, int]]

    @classmethod
    def from_words(cls, words: Sequence[str]) -> Units:
        spans, pos = [], 0
        for w in words:
            spans.append((pos, pos + len(w)))
            pos += len(w)
        return cls("".join(words), spans)

    def __len__(self) -> int:
        return len(self.spans)


@dataclass
class _Window:
    """One encoder window of one sentence: token ids and, per local unit, token positions."""

    sent: int
    ids: list[int]  # with [CLS]/[SEP]
    units: list[int]  # global unit index of each local unit
    toks: list[list[int]]  # positions (in ids) of each local unit's tokens
    home: list[bool]  # local unit's row is read from this window
    singles: torch.Tensor | None = None
    F: np.ndarray | None = field(default=None, repr=False)


@dataclass
class ImpactResult:
    matrix: np.ndarray
    uncovered: int = 0  # unit pairs that never shared an encoder window


def _assign_tokens(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Token indices of each unit: tokens whose start lies inside the unit's span."""
    out: list[list[int]] = [[] for _ in spans]
    u = 0
    for t, (s, _e) in enumerate(offsets):
        while u < len(spans) and spans[u][1] <= s:
            u += 1
        if u < len(spans) and spans[u][0] <= s < spans[u][1]:
            out[u].append(t)
    return out


class ImpactEngine:
    """Compute impact matrices with any HF encoder (BERT, RoBERTa, ALBERT, ...).

    ``encoder``: a :class:`LoadedEncoder`, a model name/folder, or ``None`` (shipped default).
    ``layer``: hidden layer to read (-1 or ``"last"`` = last; 0 = embeddings; ``"middle"`` = layer
    ``max(1, L // 2)`` of an L-layer encoder; ``"auto"`` = the model's own probe layer, see
    :func:`resolve_layer`). Reading layer k < L runs only the first k layers
    when the encoder keeps its layers in ``encoder.layer`` (BERT, RoBERTa, ELECTRA, ...), else
    the full model with ``output_hidden_states``. ``metric``: euclidean | cosine.
    ``budget``: padded tokens per forward batch. ``bf16``: run the forward under bf16 autocast
    on CPU (~3x faster on CPUs with native bf16; impacts then differ from fp32 by ~1%, so the
    default fp32 is what equals the paper-schedule oracle). On CUDA the weights are bf16 anyway.
    """

    def __init__(
        self,
        encoder: LoadedEncoder | str | None = None,
        *,
        layer: int | str = -1,
        metric: str = "euclidean",
        budget: int = 8192,
        window: int | None = None,
        overlap: int | None = None,
        bf16: bool = False,
    ) -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError("metric must be 'euclidean' or 'cosine'")
        # one loaded copy per model per process (segmenter and parser share it)
        self.enc = encoder if isinstance(encoder, LoadedEncoder) else cached_encoder(
            None if encoder is None else str(encoder))
        self.tok = self.enc.tokenizer
        self.layer = resolve_layer(self.enc.model, layer)
        self._model = truncated(self.enc.model, self.layer)
        n_layers = int(getattr(self.enc.model.config, "num_hidden_layers", 0))
        k = n_layers if self.layer == -1 else self.layer
        # BERT-style encoders: the factorised forward (:meth:`_factorised`); None: the plain one
        self._layers = bert_layers(self.enc.model, k) if k >= 1 else None
        self.metric = metric
        self.budget = budget
        self.window = window or (self.enc.max_tokens - 2)
        self.overlap = overlap if overlap is not None else max(1, self.window // 4)
        self.stats = BatchStats()
        # bf16 autocast of the forward on CPU (on CUDA the weights are bf16 already)
        self.bf16 = bool(bf16) and self.enc.device.type == "cpu"

    # ------------------------------------------------------------------ public API
    def char_units(self, text: str) -> Units:
        """Units = the tokenizer's tokens (characters for Hanzi, WordPiece words for Latin)."""
        return Units(text, list(self.tok.encode(text).offsets))

    def full(self, items: Sequence[Units | str]) -> list[ImpactResult]:
        """Full impact matrices (n x n, zero diagonal) for each item."""
        return self._run(items, None)

    def band(self, items: Sequence[Units | str], width: int) -> list[ImpactResult]:
        """Impact matrices restricted to unit pairs at most ``width`` apart (``|i - j| <= width``;
        other entries 0): n + the pairs in the band perturbed sequences (``width = 1``: the
        adjacent mode, ``width >= n - 1``: the full matrix)."""
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        return self._run(items, width)

    def adjacent(self, items: Sequence[Units | str]) -> list[np.ndarray]:
        """For each item an (n-1, 2) array: column 0 = impact of unit i on unit i+1
        (``F[i+1][i]``), column 1 = impact of unit i+1 on unit i (``F[i][i+1]``)."""
        res = self._run(items, 1)
        out = []
        for r in res:
            F = r.matrix
            n = F.shape[0]
            idx = np.arange(n - 1)
            out.append(np.stack([F[idx + 1, idx], F[idx, idx + 1]], axis=1) if n > 1 else np.zeros((0, 2)))
        return out

    # ------------------------------------------------------------------ internals
    def _prepare(self, items: Sequence[Units | str]) -> tuple[list[_Window], list[int]]:
        units = [self.char_units(x) if isinstance(x, str) else x for x in items]
        encs = self.tok.encode_batch([u.text for u in units])
        wins: list[_Window] = []
        sizes = []
        for s, (u, enc) in enumerate(zip(units, encs)):
            sizes.append(len(u))
            tok_of = _assign_tokens(enc.offsets, u.spans)
            n_tok = len(enc.ids)
            spans = windows(max(n_tok, 1), self.window, min(self.overlap, self.window - 1))
            owned = stitch_ranges(spans)
            for (ws, we), (os_, oe) in zip(spans, owned):
                loc_units, loc_toks, home = [], [], []
                for k, tk in enumerate(tok_of):
                    if tk and ws <= tk[0] and tk[-1] < we:
                        loc_units.append(k)
                        loc_toks.append([t - ws + 1 for t in tk])
                        home.append(os_ <= tk[0] < oe)
                if not any(home):
                    continue
                ids = self.tok.with_specials(enc.ids[ws:we])
                wins.append(_Window(s, ids, loc_units, loc_toks, home))
        return wins, sizes

    def _run(self, items: Sequence[Units | str], width: int | None) -> list[ImpactResult]:
        """Matrices with the pairs at most ``width`` units apart (None: all pairs)."""
        wins, sizes = self._prepare(items)
        for w in wins:
            m = len(w.units)
            w.F = np.zeros((m, m), dtype=np.float64)
            w.singles = None
        # pass 1: singly-masked copies; pass 2: doubly-masked copies
        singles = [(w, (i,)) for w in wins for i in range(len(w.units))]
        self._forward(singles, store=True)
        pairs = []
        for w in wins:
            m = len(w.units)
            span = m if width is None else width
            pairs.extend((w, (i, j)) for i in range(m) for j in range(i + 1, min(m, i + 1 + span))
                         if w.home[i] or w.home[j])
        self._forward(pairs, store=False)
        # stitch windows into per-sentence matrices
        results = [ImpactResult(np.zeros((n, n), dtype=np.float64)) for n in sizes]
        covered = [np.zeros((n, n), dtype=bool) for n in sizes]
        for w in wins:
            F = results[w.sent].matrix
            idx = np.asarray(w.units)
            rows = np.asarray(w.home)
            F[np.ix_(idx[rows], idx)] = w.F[rows]
            covered[w.sent][np.ix_(idx[rows], idx)] = True
            w.singles = None
        for r, c in zip(results, covered):
            n = r.matrix.shape[0]
            if width is None and n:
                np.fill_diagonal(c, True)
                r.uncovered = int((~c).sum())
        return results

    @torch.inference_mode()
    def _forward(self, items: list[tuple[_Window, tuple[int, ...]]], store: bool) -> None:
        if not items:
            return
        model, dev = self._model, self.enc.device
        mask_id = self.tok.mask_id
        for b in token_batches(items, lambda it: len(it[0].ids), self.budget, pool=1 << 16, stats=self.stats):
            self._batch(b, model, dev, mask_id, store)

    def _batch(self, b: Batch, model, dev, mask_id: int, store: bool) -> None:  # noqa: ANN001
        seqs = []
        for w, us in b.items:
            ids = list(w.ids)
            for u in us:
                for t in w.toks[u]:
                    ids[t] = mask_id
            seqs.append(ids)
        ids, attn = pad(seqs, self.tok.pad_id)
        ids, attn = ids.to(dev), attn.to(dev)
        n_read = 1 if store else 2
        # the token positions each row reads (its first n_read units), and their column in h
        reads = [sorted({t for u in us[:n_read] for t in w.toks[u]}) for w, us in b.items]
        with torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext():
            if self._layers is not None:
                m = max(map(len, reads))
                pos = torch.zeros((len(reads), m), dtype=torch.long)
                for r, p in enumerate(reads):
                    pos[r, : len(p)] = torch.tensor(p)
                h = self._factorised(b, ids, attn.bool(), pos.to(dev))
                cols = [{t: c for c, t in enumerate(p)} for p in reads]
            else:
                if self.layer == -1 or model is not self.enc.model:  # last layer, or a truncated copy
                    h = model(input_ids=ids, attention_mask=attn).last_hidden_state
                else:
                    h = model(input_ids=ids, attention_mask=attn, output_hidden_states=True).hidden_states[self.layer]
                cols = None
        h = h.float()
        # averaging weights over each read unit's tokens: A[row, k] reads unit us[k]
        A = torch.zeros((len(b.items), n_read, h.shape[1]), dtype=h.dtype)
        for r, (w, us) in enumerate(b.items):
            for k, u in enumerate(us[:n_read]):
                tk = w.toks[u] if cols is None else [cols[r][t] for t in w.toks[u]]
                A[r, k, tk] = 1.0 / len(tk)
        vec = torch.einsum("bkt,bth->bkh", A.to(h.device), h).cpu()
        if store:
            for r, (w, (i,)) in enumerate(b.items):
                if w.singles is None:
                    w.singles = torch.zeros((len(w.units), vec.shape[-1]), dtype=vec.dtype)
                w.singles[i] = vec[r, 0]
            return
        left = torch.stack([w.singles[i] for w, (i, _j) in b.items])
        right = torch.stack([w.singles[j] for w, (_i, j) in b.items])
        d_i = self._dist(left, vec[:, 0])
        d_j = self._dist(right, vec[:, 1])
        for r, (w, (i, j)) in enumerate(b.items):
            w.F[i, j] = d_i[r]
            w.F[j, i] = d_j[r]

    def _factorised(self, b: Batch, ids: torch.Tensor, keys: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Layer-k vectors at ``pos`` of the perturbed copies ``ids`` (BERT-style encoders).

        Every copy of a window differs from the window's own ids only at masked positions, and the
        embedding of a position depends only on its id and position, so the embeddings - and
        layer 1's query/key/value projections, which act position by position - take one of two
        values per position: the original token's or ``[MASK]``'s. They are computed once per
        window in the batch for both variants and gathered per copy; layer 1 then runs only its
        attention, output and feed-forward, layers 2..k-1 run in full, and layer k only at the
        read positions (:func:`layer_at`). Exact up to float rounding (the same operations,
        regrouped)."""
        layers, emb = self._layers, self.enc.model.embeddings
        project = getattr(self.enc.model, "embeddings_project", None)  # ELECTRA
        wins = list({id(w): w for w, _us in b.items}.values())  # each window once, first-seen order
        index = {id(w): k for k, w in enumerate(wins)}
        T = ids.shape[1]
        base, _ = pad([w.ids for w in wins], self.tok.pad_id)  # longest window = T
        base = base.to(ids.device)
        variants = torch.cat([base, torch.where(base != self.tok.pad_id, self.tok.mask_id, base)])
        e = emb(input_ids=variants)
        if project is not None:
            e = project(e)
        widx = torch.tensor([index[id(w)] for w, _us in b.items], device=ids.device)
        masked = (ids != base[widx]).long()  # 1 where the copy holds [MASK] instead of its token
        at = (masked, widx[:, None], torch.arange(T, device=ids.device)[None, :])
        h = e.view(2, len(wins), T, -1)[at]
        if len(layers) > 1:  # (under bf16 autocast the projections stay bf16, the residual fp32)
            sa = layers[0].attention.self
            qkv = torch.cat([sa.query(e), sa.key(e), sa.value(e)], -1).view(2, len(wins), T, -1)[at]
            h = layer_full(layers[0], h, keys, qkv.chunk(3, -1))
            for layer in layers[1:-1]:
                h = layer_full(layer, h, keys)
        return layer_at(layers[-1], h, keys, pos)

    def _dist(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        if self.metric == "euclidean":
            return torch.linalg.vector_norm(a - b, dim=-1).double().numpy()
        return (1.0 - torch.nn.functional.cosine_similarity(a, b, dim=-1)).double().numpy()
