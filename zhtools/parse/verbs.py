"""Label-free root choice: how verb-like each word is, asked of the encoder's own masked-LM head.

A Chinese sentence's root (UD: the main predicate) is usually a verb, and verbs are the words
that an aspect marker (了 着 过) follows and a negator (不 没) precedes. For every word ``k`` of a
sentence two copies go through the masked LM, one with a ``[MASK]`` inserted right before word
``k`` and one with it right after; the word's verb score is the z-scored log-probability of a
negator at the first mask plus the z-scored log-probability of an aspect marker at the second
(z over the sentence's words). No gold trees or tags: the cue words are a closed list of function
characters, and the probabilities are the pretrained model's own.

On UD Chinese GSDSimp (150 sentences each, gold words, Eisner, shipped encoder): the root chosen
as the most verb-like non-punctuation word is the gold root in 34% of the dev sentences, against
12% for the impact-only ``out-impact`` rule; UAS 0.2645 -> 0.2830 on dev (where the rule and the
16-token context were chosen) and 0.2585 -> 0.2782 on test (``benchmarks/bench_parse.py``); on all
459 test sentences of 2-40 words 0.2616 -> 0.2754 (right-chain 0.2590).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from zhtools.text.batching import Batch, map_batched, pad

if TYPE_CHECKING:  # pragma: no cover
    from zhtools.models.loader import LoadedEncoder

CONTEXT = 16  # tokens of context per copy, mask included
AFTER = "了着过"  # aspect markers: follow a verb
BEFORE = "不没"  # negators: precede a verb (or an adjective, also a predicate)


def is_punctuation(word: str) -> bool:
    """Every character is Unicode punctuation or a symbol (``，``, ``。``, ``《``, ``%``)."""
    return bool(word) and all(unicodedata.category(c)[0] in "PS" for c in word)


def _cue_ids(enc: LoadedEncoder, chars: str) -> list[int]:
    tok = enc.tokenizer
    ids = []
    for c in chars:
        e = tok.encode(c).ids
        if len(e) == 1 and e[0] != tok.unk_id:
            ids.append(e[0])
    return ids


def _split_mlm(model: torch.nn.Module) -> tuple[torch.nn.Module | None, torch.nn.Module | None]:
    """``(encoder body, MLM head)`` of a ``...ForMaskedLM`` model when it is built as the two
    (BERT ``bert`` + ``cls``, RoBERTa ``roberta`` + ``lm_head``, ALBERT ``albert`` +
    ``predictions``), else ``(None, None)`` (then the full model runs)."""
    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    rest = [m for name, m in model.named_children() if name != prefix]
    return (base, rest[0]) if base is not None and len(rest) == 1 else (None, None)


def verb_scores(enc: LoadedEncoder, sentences: Sequence[Sequence[str]], budget: int = 8192,
                context: int = CONTEXT, bf16: bool = False) -> list[np.ndarray]:
    """Per sentence (a list of words) a verb score per word (larger = more verb-like); zeros when
    the tokenizer knows none of the cue characters. ``enc``: an encoder loaded with its MLM head
    (``load_encoder(..., head="mlm")``). Each copy is cropped to ``context`` tokens (at most the
    encoder window) centred on the mask: the cue is local, and the cost stays linear in the
    sentence length. ``bf16``: bf16 autocast of the forward on CPU."""
    return mask_probes(enc, sentences, budget, context, bf16)[0]


def mask_probes(enc: LoadedEncoder, sentences: Sequence[Sequence[str]], budget: int = 8192,
                context: int = CONTEXT, bf16: bool = False, keep: Sequence[int] | None = None
                ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """:func:`verb_scores` and, when token ids ``keep`` are given, each word's *context
    features* from the same forward passes: the square roots of the masked LM's probabilities
    of those tokens at the mask before the word and at the mask after it, ``[n, 2 * len(keep)]``
    per sentence (what may precede and follow the word: its distributional class, used by
    :mod:`zhtools.parse.classes`); ``None`` without ``keep``. One-word sentences get zero verb
    scores and zero features."""
    tok, model = enc.tokenizer, enc.model
    after, before = _cue_ids(enc, AFTER), _cue_ids(enc, BEFORE)
    out = [np.zeros(len(ws)) for ws in sentences]
    kept = None if keep is None else torch.as_tensor(list(keep), dtype=torch.long)
    feats = None if kept is None else [np.zeros((len(ws), 2 * len(kept)), dtype=np.float32) for ws in sentences]
    if tok.mask_id is None or (kept is None and (not after or not before)):
        return out, feats
    window = max(2, min(context, enc.max_tokens - 2))
    items = []  # (sentence, word, side, ids with specials, mask position)
    for si, ws in enumerate(sentences):
        if len(ws) < 2:
            continue
        flat: list[int] = []
        starts = []  # token offset of each word, then the end
        for w in ws:
            starts.append(len(flat))
            flat.extend(tok.encode(w).ids)
        starts.append(len(flat))
        for k in range(len(ws)):
            for side in (0, 1):  # 0: mask before word k, 1: after it
                pos = starts[k + side]
                ids = flat[:pos] + [tok.mask_id] + flat[pos:]
                if len(ids) > window:
                    lo = min(max(0, pos - window // 2), len(ids) - window)
                    ids, pos = ids[lo : lo + window], pos - lo
                items.append((si, k, side, tok.with_specials(ids), pos + 1))

    base, head = _split_mlm(model)
    autocast = bf16 and enc.device.type == "cpu"

    def run(b: Batch) -> list[tuple[float, np.ndarray | None]]:
        x, m = pad([it[3] for it in b.items], tok.pad_id)
        x, m = x.to(enc.device), m.to(enc.device)
        rows, cols = torch.arange(len(b.items)), torch.tensor([it[4] for it in b.items])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if head is not None:  # the vocabulary projection only at the mask positions
                logits = head(base(input_ids=x, attention_mask=m)[0][rows, cols])
            else:
                logits = model(input_ids=x, attention_mask=m).logits[rows, cols]
        lp = logits.float().log_softmax(-1).cpu()
        cue = [after if it[2] else before for it in b.items]
        verb = [float(torch.logsumexp(lp[r, c], -1)) if c else 0.0 for r, c in enumerate(cue)]
        ctx = [None] * len(verb) if kept is None else list(lp[:, kept].mul(0.5).exp().numpy())
        return list(zip(verb, ctx))

    raw = {(si, k, side): v for (si, k, side, *_), v in
           zip(items, map_batched(run, items, lambda it: len(it[3]), budget))}
    for si, ws in enumerate(sentences):
        if len(ws) < 2:
            continue
        if feats is not None:
            d = len(kept)
            for k in range(len(ws)):
                for side in (0, 1):
                    feats[si][k, side * d : (side + 1) * d] = raw[si, k, side][1]
        if not after or not before:
            continue
        s = np.zeros(len(ws))
        for side in (0, 1):
            v = np.array([raw[si, k, side][0] for k in range(len(ws))])
            sd = v.std()
            s += (v - v.mean()) / sd if sd > 0 else 0.0
        out[si] = s
    return out, feats


def verb_root_scores(words: Sequence[str], verb: np.ndarray,
                     exclude: Sequence[bool] | None = None) -> np.ndarray:
    """Root scores for the decoders: 0 for the most verb-like word that is not punctuation (any
    word when all are) nor marked in ``exclude`` (unless that leaves none), -1e9 for every
    other word."""
    v = np.asarray(verb, dtype=float)
    barred = np.array([is_punctuation(w) for w in words], dtype=bool)
    if exclude is not None and len(v):
        with_excluded = barred | np.asarray(exclude, dtype=bool)
        if not with_excluded.all():
            barred = with_excluded
    cand = np.where(barred.all(), v, np.where(barred, -np.inf, v))
    out = np.full(len(v), -1e9)
    if len(v):
        out[int(np.argmax(cand))] = 0.0
    return out
