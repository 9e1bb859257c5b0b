"""Decoding for :class:`~zhtools.summarize.model.BiSeq2Seq`: greedy, left-to-right (or right-to-
left) beam search and synchronous bidirectional beam search, all batched over sources with a
key/value cache and the GNMT length penalty ``((5 + len) / 6) ** alpha``.

Bidirectional beam (SB-NMT): the beam of size ``beam`` is split into ``beam // 2`` L2R and
``beam // 2`` R2L hypotheses; hypothesis i of one half is paired with hypothesis i of the other
(index pairing) and each attends to its partner's states at every step; top-k is taken within
each half; finished hypotheses of both halves compete in one pool (R2L outputs reversed).
``pairing="all"``: each hypothesis instead averages its (tanh-squashed) attention over all
hypotheses of the other half (SB-NMT's averaging variant); with one hypothesis per half both
pairings are the same.

Meet-in-the-middle beam (models trained with ``halves=True``): ``beam // 2`` pairs, each an L2R
half (the text's beginning) and an R2L half (its end, reversed) decoded in the same step and
attending to each other; a pair is finished once both halves have emitted EOS and its text is
L2R half + reversed R2L half. Candidates per pair are the top 2K tokens of each live half
(a finished half only "waits"), scored by the summed log-probability; pairs stay whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zhtools.summarize.model import BiSeq2Seq


@dataclass
class Hyp:
    tokens: list[int]
    score: float  # length-normalised log-probability
    logp: float
    direction: str

    def text_ids(self) -> list[int]:
        return self.tokens[::-1] if self.direction == "r2l" else list(self.tokens)


def length_penalty(n: int, alpha: float) -> float:
    return ((5.0 + n) / 6.0) ** alpha


def block_repeats(logp: torch.Tensor, seqs: list[list[int]], n: int) -> None:
    """In place: forbid, per row, every token that would repeat an n-gram already in the row's
    sequence (n-gram blocking; the check is symmetric, so it serves R2L rows unchanged)."""
    if n <= 0:
        return
    for r, s in enumerate(seqs):
        if len(s) < n - 1:
            continue
        tail = tuple(s[len(s) - n + 1 :]) if n > 1 else ()
        banned = {s[i + n - 1] for i in range(len(s) - n + 1) if tuple(s[i : i + n - 1]) == tail}
        if banned:
            logp[r, list(banned)] = float("-inf")


def _only(logp: torch.Tensor, token: int) -> torch.Tensor:
    """``logp`` with every token but ``token`` forbidden (forced termination)."""
    forced = torch.full_like(logp, float("-inf"))
    forced[:, token] = logp[:, token]
    return forced


def _mark_done(done: list[bool], pool: list[list[Hyp]], best_alive: list[float], enough: int,
               max_tokens: int, alpha: float) -> None:
    """A source is finished once its pool holds ``enough`` hypotheses, or no live hypothesis can
    still beat the best finished one (scores only fall; the penalty is at most lp(max_tokens))."""
    for b, alive in enumerate(best_alive):
        if done[b] or not pool[b]:
            continue
        best = max(h.score for h in pool[b])
        bound = alive / length_penalty(max_tokens, alpha) if alpha > 0 else alive
        if len(pool[b]) >= enough or bound < best or alive == float("-inf"):
            done[b] = True


def _results(pool: list[list[Hyp]], nbest: bool) -> list[list[int]] | list[list[Hyp]]:
    out = []
    for hyps in pool:
        hyps = sorted(hyps, key=lambda h: -h.score)
        out.append(hyps if nbest else (hyps[0].text_ids() if hyps else []))
    return out


@torch.no_grad()
def greedy(model: BiSeq2Seq, src: torch.Tensor, src_mask: torch.Tensor, max_len: int = 32,
           direction: str = "l2r", no_repeat_ngram: int = 0) -> list[list[int]]:
    """Argmax decoding, one direction (the reference for beam = 1)."""
    B = src.shape[0]
    st = model.start_decoding(src, src_mask, 1, [0 if direction == "l2r" else 1])
    tok = torch.full((B,), model.bos_id, dtype=torch.long, device=src.device)
    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    for _ in range(max_len - 1):  # the last step could only end the text (as in beam_search)
        logp = model.step(st, tok)
        block_repeats(logp, out, no_repeat_ngram)
        nxt = logp.argmax(-1)
        for b in range(B):
            if not done[b]:
                if int(nxt[b]) == model.eos_id:
                    done[b] = True
                else:
                    out[b].append(int(nxt[b]))
        if all(done):
            break
        tok = nxt
    return [o[::-1] if direction == "r2l" else o for o in out]


@torch.no_grad()
def beam_search(model: BiSeq2Seq, src: torch.Tensor, src_mask: torch.Tensor, beam: int = 4,
                mode: str = "bidirectional", max_len: int = 32, alpha: float = 0.6,
                cache: bool = True, nbest: bool = False, no_repeat_ngram: int = 0,
                pairing: str = "index") -> list[list[int]] | list[list[Hyp]]:
    """Beam search; ``mode`` is ``l2r``, ``r2l`` or ``bidirectional`` (beam split in halves).

    Returns the best token ids per source (text order), or all finished hypotheses sorted by
    score with ``nbest=True``. ``cache=False`` recomputes every prefix (same result, slower).
    ``no_repeat_ngram=n`` > 0 forbids repeating any n-gram within a hypothesis. ``pairing``
    (bidirectional SB-NMT beam): ``index`` or ``all`` (see the module docstring).
    """
    if mode not in ("l2r", "r2l", "bidirectional"):
        raise ValueError(f"unknown mode {mode!r} (l2r | r2l | bidirectional)")
    if pairing not in ("index", "all"):
        raise ValueError(f"unknown pairing {pairing!r} (index | all)")
    if mode == "bidirectional":
        if beam < 2 or not model.cfg.bidirectional:
            raise ValueError("bidirectional beam search needs beam >= 2 and a bidirectional model")
        if model.cfg.halves:
            if pairing == "all":
                raise ValueError('pairing="all" is for SB-NMT models: a meet-in-the-middle pair is one '
                                 "hypothesis, its halves always attend to each other")
            return meet_search(model, src, src_mask, beam // 2, max_len, alpha, cache, nbest, no_repeat_ngram)
        dirs, K = [0, 1], beam // 2
    else:
        dirs, K = [0 if mode == "l2r" else 1], beam
    names = ["l2r" if d == 0 else "r2l" for d in dirs]
    H = len(dirs)
    B = src.shape[0]
    dev = src.device
    st = model.start_decoding(src, src_mask, K, dirs)
    if pairing == "all" and H == 2:
        st["all_pairs"] = K
    R = H * B * K
    scores = torch.full((H, B, K), float("-inf"), device=dev)
    scores[:, :, 0] = 0.0
    seqs = torch.full((R, 0), 0, dtype=torch.long, device=dev)
    tok = torch.full((R,), model.bos_id, dtype=torch.long, device=dev)
    prefix = tok[:, None]  # whole prefixes, kept only for cache=False
    pool: list[list[Hyp]] = [[] for _ in range(B)]
    done = [False] * B
    V = None
    for t in range(max_len):
        logp = model.step(st, tok) if cache else model.step_uncached(st, prefix)
        V = logp.shape[-1]
        seq_list = seqs.tolist()
        block_repeats(logp, seq_list, no_repeat_ngram)
        if t == max_len - 1:  # force termination: only EOS allowed at the last step
            logp = _only(logp, model.eos_id)
        cand = (scores.view(H, B, K, 1) + logp.view(H, B, K, V)).view(H, B, K * V)
        top_s, top_i = cand.topk(min(2 * K, K * V), dim=-1)  # (H, B, 2K)
        parent, token = top_i // V, top_i % V
        new_scores = torch.full((H, B, K), float("-inf"), device=dev)
        new_parent = torch.zeros((H, B, K), dtype=torch.long, device=dev)
        new_token = torch.full((H, B, K), model.pad_id, dtype=torch.long, device=dev)
        ts, tp, tt = top_s.tolist(), parent.tolist(), token.tolist()
        for h in range(H):
            for b in range(B):
                if done[b]:
                    continue
                k = 0
                for rank, (s, p, w) in enumerate(zip(ts[h][b], tp[h][b], tt[h][b])):
                    if s == float("-inf"):
                        break
                    if w == model.eos_id:
                        if rank >= K:  # an ending ranked outside the beam is not a candidate
                            continue
                        row = (h * B + b) * K + p
                        toks = seq_list[row]
                        pool[b].append(Hyp(toks, s / length_penalty(len(toks) + 1, alpha), s, names[h]))
                        continue
                    if k < K:
                        new_scores[h, b, k], new_parent[h, b, k], new_token[h, b, k] = s, p, w
                        k += 1
        _mark_done(done, pool, new_scores.amax(dim=(0, 2)).tolist(), beam, max_len, alpha)
        if all(done):
            break
        rows = (torch.arange(H * B, device=dev)[:, None] * K + new_parent.view(H * B, K)).view(-1)
        model.reorder(st, rows)
        seqs = torch.cat([seqs.index_select(0, rows), new_token.view(-1, 1)], 1)
        if not cache:
            prefix = torch.cat([prefix.index_select(0, rows), new_token.view(-1, 1)], 1)
        scores = new_scores
        tok = new_token.view(-1)
    return _results(pool, nbest)


@torch.no_grad()
def meet_search(model: BiSeq2Seq, src: torch.Tensor, src_mask: torch.Tensor, pairs: int = 2,
                max_len: int = 32, alpha: float = 0.6, cache: bool = True, nbest: bool = False,
                no_repeat_ngram: int = 0) -> list[list[int]] | list[list[Hyp]]:
    """Meet-in-the-middle beam search with ``pairs`` (L2R half, R2L half) hypotheses per source;
    at most ``max_len`` tokens in all (each half at most ceil(max_len / 2))."""
    K, B, dev = pairs, src.shape[0], src.device
    st = model.start_decoding(src, src_mask, K, [2, 3])
    half, pad, eos = B * K, model.pad_id, model.eos_id
    steps = (max_len + 1) // 2 + 1  # tokens per half + its EOS
    scores = torch.full((B, K), float("-inf"), device=dev)
    scores[:, 0] = 0.0
    seqs: list[list[int]] = [[] for _ in range(2 * half)]  # rows [L2R halves; R2L halves]
    fin = torch.zeros(2 * half, dtype=torch.bool, device=dev)
    tok = torch.full((2 * half,), model.bos_id, dtype=torch.long, device=dev)
    prefix = tok[:, None]
    valid = torch.zeros((2 * half, 0), dtype=torch.bool, device=dev)
    pool: list[list[Hyp]] = [[] for _ in range(B)]
    done = [False] * B
    for t in range(steps):
        valid = torch.cat([valid, ~fin[:, None]], 1)  # a finished half feeds PAD, hidden from its partner
        logp = model.step(st, tok, valid) if cache else model.step_uncached(st, prefix, valid)
        V = logp.shape[-1]
        block_repeats(logp, seqs, no_repeat_ngram)
        logp[:, pad] = float("-inf")  # PAD marks a finished half
        if t == steps - 1:
            logp = _only(logp, eos)
        C = min(2 * K, V)
        val, idx = logp.topk(C, dim=-1)  # (2*half, C)
        wait = torch.full_like(val, float("-inf"))
        wait[:, 0] = 0.0
        val = torch.where(fin[:, None], wait, val)
        idx = torch.where(fin[:, None], torch.full_like(idx, pad), idx)
        vl, vr = val[:half].view(B, K, C, 1), val[half:].view(B, K, 1, C)
        cand = (scores.view(B, K, 1, 1) + vl + vr).view(B, K * C * C)
        top_s, top_i = cand.topk(min(2 * K, K * C * C), dim=-1)
        il, ir, fl = idx[:half].tolist(), idx[half:].tolist(), fin.tolist()
        new_scores = torch.full((B, K), float("-inf"), device=dev)
        new_parent = torch.zeros((B, K), dtype=torch.long, device=dev)
        new_l = torch.full((B, K), pad, dtype=torch.long, device=dev)
        new_r = torch.full((B, K), pad, dtype=torch.long, device=dev)
        ts, ti = top_s.tolist(), top_i.tolist()
        for b in range(B):
            if done[b]:
                continue
            k = 0
            for rank, (sc, i) in enumerate(zip(ts[b], ti[b])):
                if sc == float("-inf"):
                    break
                p, rest = divmod(i, C * C)
                a, c = divmod(rest, C)
                row = b * K + p
                wl, wr = il[row][a], ir[row][c]
                end_l = fl[row] or wl == eos
                end_r = fl[half + row] or wr == eos
                if end_l and end_r:
                    if rank >= K:
                        continue
                    left, right = seqs[row], seqs[half + row]
                    n = len(left) + len(right)
                    pool[b].append(Hyp(left + right[::-1], sc / length_penalty(n + 2, alpha), sc, "meet"))
                    continue
                if k < K:
                    new_scores[b, k], new_parent[b, k] = sc, p
                    new_l[b, k] = pad if end_l else wl
                    new_r[b, k] = pad if end_r else wr
                    k += 1
        _mark_done(done, pool, new_scores.amax(dim=1).tolist(), K, max_len + 2, alpha)
        if all(done):
            break
        parent_rows = (torch.arange(B, device=dev)[:, None] * K + new_parent).view(-1)
        rows = torch.cat([parent_rows, parent_rows + half])
        model.reorder(st, rows)
        valid = valid.index_select(0, rows)
        new_tok = torch.cat([new_l.view(-1), new_r.view(-1)])
        old = [seqs[r] for r in rows.tolist()]
        seqs = [s + [w] if w != pad else s for s, w in zip(old, new_tok.tolist())]
        fin = new_tok == pad
        if not cache:
            prefix = torch.cat([prefix.index_select(0, rows), new_tok[:, None]], 1)
        scores = new_scores
        tok = new_tok
    return _results(pool, nbest)
