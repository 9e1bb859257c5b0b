"""Bidirectional seq2seq summarizer: masks (no leakage), decoding, cache, training, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_tokenizer

from zhtools.summarize import BiSeq2Seq, DecoderConfig, Summarizer, beam_search, greedy
from zhtools.summarize.train import SummTrainConfig, collate, train_summarizer


def tiny_model(bidirectional: bool = True, copy: bool = True, seed: int = 0, halves: bool = False):
    from transformers import BertConfig, BertModel

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    enc = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    cfg = DecoderConfig(layers=2, heads=2, ffn=64, max_len=24, dropout=0.0, lam=1.0, copy=copy,
                        bidirectional=bidirectional, halves=halves, interact="all" if halves else "top")
    return BiSeq2Seq(enc, cfg, tok.cls_id, tok.sep_id, tok.pad_id).eval(), tok


def _batch(tok, texts, titles=None):  # noqa: ANN001, ANN202
    srcs = [tok.with_specials(tok.encode(t).ids) for t in texts]
    tgts = [tok.encode(t).ids for t in titles] if titles else None
    return collate(srcs, tgts, tok.pad_id)


TEXTS = ["今天天气很好，我们去公园散步。", "北京是中国的首都，也是一座历史悠久的城市。"]
TITLES = ["天气很好", "北京是中国的首都"]




@pytest.mark.parametrize("leak,expect_leak", [("none", False), ("gold", True)])
def test_no_position_sees_its_target_through_the_other_direction(leak: str, expect_leak: bool) -> None:
    """Change title token y[k]: under leak="none" the L2R prediction at position k (whose target
    is y[k]) and the R2L prediction whose target is y[k] do not change; the naive gold-vs-gold
    scheme does change them (the leak the scheme removes)."""
    model, tok = tiny_model()
    b = _batch(tok, TEXTS[:1], TITLES[1:2])
    n = int(b["tgt_len"][0])
    captured = {}
    orig = model._output

    def spy(h, w, src, ctx):  # noqa: ANN001, ANN202
        out = orig(h, w, src, ctx)
        captured["logp"] = out
        return out

    model._output = spy
    leaked = []
    for k in range(n):
        model(b["src"], b["src_mask"], b["tgt"], b["tgt_len"], leak=leak)
        base = captured["logp"].clone()
        t2 = b["tgt"].clone()
        t2[0, k] = tok.unk_id if int(t2[0, k]) != tok.unk_id else tok.mask_id
        model(b["src"], b["src_mask"], t2, b["tgt_len"], leak=leak)
        new = captured["logp"]
        # L2R row 0 predicts y[k] at position k; R2L row 1 predicts y[k] at position n-1-k
        d_l2r = (new[0, k] - base[0, k]).abs().max().item()
        d_r2l = (new[1, n - 1 - k] - base[1, n - 1 - k]).abs().max().item()
        leaked.append(max(d_l2r, d_r2l) > 1e-6)
    if expect_leak:
        assert any(leaked)
    else:
        assert not any(leaked), leaked


def test_halves_hide_each_target_from_the_other_half() -> None:
    """Meet-in-the-middle training (gold vs gold, interaction in every layer): changing y[k]
    changes no prediction whose target is y[k] in either half, but does reach the other half's
    later positions (the halves do interact)."""
    model, tok = tiny_model(halves=True)
    b = _batch(tok, TEXTS[:1], ["北京是中国的首都吗"])  # n = 9: L2R half y[0..4], R2L half y[8..5]
    n = int(b["tgt_len"][0])
    m = (n + 1) // 2
    captured = []
    orig = model._output

    def spy(h, w, src, ctx):  # noqa: ANN001, ANN202
        out = orig(h, w, src, ctx)
        captured.append(out)
        return out

    model._output = spy
    reached = []
    for k in range(n):
        captured.clear()
        model(b["src"], b["src_mask"], b["tgt"], b["tgt_len"])
        base = captured[-1].clone()  # the halves pass: rows [L2R half; R2L half]
        t2 = b["tgt"].clone()
        t2[0, k] = tok.unk_id if int(t2[0, k]) != tok.unk_id else tok.mask_id
        captured.clear()
        model(b["src"], b["src_mask"], t2, b["tgt_len"])
        new = captured[-1]
        row, pos = (0, k) if k < m else (1, n - 1 - k)  # where y[k] is the target
        assert (new[row, pos] - base[row, pos]).abs().max().item() < 1e-6, k
        other = 1 - row
        last = m if other == 0 else n - m  # positions with a label (tokens + EOS)
        reached.append((new[other, : last + 1] - base[other, : last + 1]).abs().max().item() > 1e-6)
    # every token but the L2R half's last (n odd: the R2L half has ended before it is fed) is
    # visible to the other half
    assert reached == [k != m - 1 for k in range(n)]


def test_meet_search_cache_batch_and_lengths() -> None:
    model, tok = tiny_model(halves=True)
    b = _batch(tok, TEXTS)
    a = beam_search(model, b["src"], b["src_mask"], beam=4, mode="bidirectional", max_len=9, nbest=True)
    c = beam_search(model, b["src"], b["src_mask"], beam=4, mode="bidirectional", max_len=9, nbest=True,
                    cache=False)
    assert [[h.tokens for h in x] for x in a] == [[h.tokens for h in x] for x in c]
    assert all(abs(h1.score - h2.score) < 1e-4 for x, y in zip(a, c) for h1, h2 in zip(x, y))
    assert all(h.direction == "meet" and 0 < len(h.tokens) <= 10 for x in a for h in x)
    best = beam_search(model, b["src"], b["src_mask"], beam=4, mode="bidirectional", max_len=9)
    for i, t in enumerate(TEXTS):
        one = _batch(tok, [t])
        assert beam_search(model, one["src"], one["src_mask"], beam=4, mode="bidirectional", max_len=9)[0] == best[i]
    # the same model's full-length directions decode on their own
    assert all(len(o) <= 9 for o in beam_search(model, b["src"], b["src_mask"], beam=4, mode="l2r", max_len=9))


def test_beam_one_equals_greedy_and_cache_equals_recompute() -> None:
    model, tok = tiny_model()
    b = _batch(tok, TEXTS)
    for direction in ("l2r", "r2l"):
        g = greedy(model, b["src"], b["src_mask"], max_len=10, direction=direction)
        bs = beam_search(model, b["src"], b["src_mask"], beam=1, mode=direction, max_len=10, alpha=0.0)
        assert g == bs
    for mode in ("l2r", "bidirectional"):
        a = beam_search(model, b["src"], b["src_mask"], beam=4, mode=mode, max_len=10, nbest=True)
        c = beam_search(model, b["src"], b["src_mask"], beam=4, mode=mode, max_len=10, nbest=True,
                        cache=False)
        assert [[h.tokens for h in x] for x in a] == [[h.tokens for h in x] for x in c]
        for x, y in zip(a, c):
            assert all(abs(h1.score - h2.score) < 1e-4 for h1, h2 in zip(x, y))
    # bidirectional n-best pools hold both directions
    nb = beam_search(model, b["src"], b["src_mask"], beam=4, mode="bidirectional", max_len=10, nbest=True)
    assert {h.direction for h in nb[0]} <= {"l2r", "r2l"}


def test_all_pairs_averaging_variant() -> None:
    """pairing="all": each hypothesis averages tanh(attention) over every hypothesis of the other
    half. The batched mean equals a loop over partners; with one hypothesis per half it equals
    index pairing; cached and uncached decoding agree; batching does not change the result."""
    import torch.nn.functional as F

    from zhtools.summarize.model import _mean_over_partners

    torch.manual_seed(0)
    B, K, h, T, dh = 2, 3, 2, 5, 4
    R = 2 * B * K
    q, k, v = torch.randn(R, h, 1, dh), torch.randn(R, h, T, dh), torch.randn(R, h, T, dh)
    mask = torch.ones(R, 1, 1, T, dtype=torch.bool)
    mask[:, :, :, 4] = False
    got = _mean_over_partners(q, k, v, mask, K)
    for r in range(R):  # k, v play the already-swapped keys: rows of group r // K are r's partners
        rows = [(r // K) * K + j for j in range(K)]
        ref = torch.stack([torch.tanh(F.scaled_dot_product_attention(
            q[r : r + 1], k[j : j + 1], v[j : j + 1], attn_mask=mask[r : r + 1])) for j in rows]).mean(0)
        assert torch.allclose(got[r : r + 1], ref, atol=1e-6), r

    model, tok = tiny_model()
    b = _batch(tok, TEXTS)
    args = (model, b["src"], b["src_mask"])
    one_each = [beam_search(*args, beam=2, max_len=10, nbest=True, pairing=p) for p in ("index", "all")]
    assert [[x.tokens for x in y] for y in one_each[0]] == [[x.tokens for x in y] for y in one_each[1]]
    a = beam_search(*args, beam=6, max_len=10, nbest=True, pairing="all")
    c = beam_search(*args, beam=6, max_len=10, nbest=True, pairing="all", cache=False)
    assert [[x.tokens for x in y] for y in a] == [[x.tokens for x in y] for y in c]
    for x, y in zip(a, c):
        assert all(abs(h1.score - h2.score) < 1e-4 for h1, h2 in zip(x, y))
    idx = beam_search(*args, beam=6, max_len=10, nbest=True, pairing="index")
    assert any(abs(h1.score - h2.score) > 1e-6 for x, y in zip(a, idx) for h1, h2 in zip(x, y))
    single = _batch(tok, TEXTS[1:])
    assert beam_search(model, single["src"], single["src_mask"], beam=6, max_len=10, pairing="all")[0] == \
        beam_search(*args, beam=6, max_len=10, pairing="all")[1]
    with pytest.raises(ValueError):
        beam_search(*args, beam=4, pairing="both")
    meet, _ = tiny_model(halves=True)
    with pytest.raises(ValueError):
        beam_search(meet, b["src"], b["src_mask"], beam=4, pairing="all")


def test_batch_decoding_matches_single() -> None:
    model, tok = tiny_model()
    both = _batch(tok, TEXTS)
    outs = beam_search(model, both["src"], both["src_mask"], beam=4, max_len=8)
    for i, t in enumerate(TEXTS):
        one = _batch(tok, [t])
        assert beam_search(model, one["src"], one["src_mask"], beam=4, max_len=8)[0] == outs[i]


def _copy_task(tmp_path: Path, seed: int, title_chars: int) -> list[str]:
    """Tiny encoder folder + train/dev TSVs whose title is the text's first characters."""
    import random

    from zhtools.models import save_model

    tok = tiny_tokenizer()
    model, _ = tiny_model()
    save_model(model.encoder, tok, tmp_path / "enc")
    rng = random.Random(seed)
    chars = "今天我们去公园中国北京的一是了人在他有这个时地为子你说生年着就那和要她也得里自以"
    rows = []
    for _ in range(120):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(8, 20)))
        rows.append(f"{text[:title_chars]}\t{text}")
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("\n".join(rows[:20]) + "\n", encoding="utf-8")
    return rows


def test_train_resume_and_summarize_cli(tmp_path: Path) -> None:
    """A tiny model learns to copy the first characters; resume after a crash gives the same
    weights; the CLI writes one summary per line and warns about truncation."""
    rows = _copy_task(tmp_path, seed=0, title_chars=4)
    dcfg = DecoderConfig(layers=2, heads=2, ffn=64, max_len=16, dropout=0.0)
    base = dict(train=str(tmp_path / "train.tsv"), dev=str(tmp_path / "dev.tsv"), encoder=str(tmp_path / "enc"),
                src_len=32, tgt_len=8, epochs=12, batch_tokens=256, lr=3e-3, progress=False,
                save_every=5, decoder=dcfg, dev_samples=20)
    res = train_summarizer(SummTrainConfig(out=str(tmp_path / "a"), **base))
    assert res["best"] > 60, res  # ROUGE-L on the copy task
    s = Summarizer(tmp_path / "a" / "best", beam=4)
    assert s([rows[0].split("\t")[1]])[0] == rows[0].split("\t")[0]

    from safetensors.torch import load_file

    from zhtools.train import loop as loop_mod

    real = loop_mod.Trainer._next_for_rank
    calls = {"n": 0}

    def crash(self, stream):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return real(self, stream)

    loop_mod.Trainer._next_for_rank = crash
    try:
        with pytest.raises(KeyboardInterrupt):
            train_summarizer(SummTrainConfig(out=str(tmp_path / "b"), **base))
    finally:
        loop_mod.Trainer._next_for_rank = real
    train_summarizer(SummTrainConfig(out=str(tmp_path / "b"), **base), resume=True)
    wa, wb = load_file(tmp_path / "a" / "decoder.safetensors"), load_file(tmp_path / "b" / "decoder.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)

    inp = tmp_path / "in.txt"
    inp.write_text(rows[0].split("\t")[1] + "\n\n" + "中国" * 40 + "\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "zhtools", "summarize", str(inp), "--model",
                        str(tmp_path / "a" / "best"), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == rows[0].split("\t")[0] and lines[1] == "" and len(lines) == 4
    assert "truncated" in r.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\n")
    r = subprocess.run([sys.executable, "-m", "zhtools", "summarize", str(bad), "--model",
                        str(tmp_path / "a" / "best"), "-q"], capture_output=True, text=True)
    assert r.returncode == 2 and "line 1" in r.stderr


def test_meet_in_the_middle_training_learns_copy_task(tmp_path: Path) -> None:
    """A halves model learns the copy task; dev ROUGE is computed with the meet search, and the
    same model also decodes its full-length L2R direction."""
    rows = _copy_task(tmp_path, seed=1, title_chars=5)
    dcfg = DecoderConfig(layers=2, heads=2, ffn=64, max_len=16, dropout=0.0, interact="all", halves=True)
    cfg = SummTrainConfig(train=str(tmp_path / "train.tsv"), dev=str(tmp_path / "dev.tsv"),
                          encoder=str(tmp_path / "enc"), out=str(tmp_path / "m"), src_len=32, tgt_len=8,
                          epochs=12, batch_tokens=256, lr=3e-3, progress=False, decoder=dcfg, dev_samples=20)
    res = train_summarizer(cfg)
    assert res["best"] > 60, res  # ROUGE-L of the meet-in-the-middle search on the copy task
    text, title = rows[0].split("\t")[1], rows[0].split("\t")[0]
    assert Summarizer(tmp_path / "m" / "best", beam=4)([text])[0] == title
    assert Summarizer(tmp_path / "m" / "best", beam=4, bf16=True)([text])[0] == title  # autocast on CPU
    assert len(Summarizer(tmp_path / "m" / "best", beam=4, mode="l2r")([text])[0]) <= 8


def test_empty_and_bad_inputs() -> None:
    model, tok = tiny_model()
    s = Summarizer(model, tok, beam=2, max_len=6)
    assert s([]) == []
    out = s(["", "😀", "中国" * 100])
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    with pytest.raises(TypeError):
        s("a string")
    l2r_only, tok = tiny_model(bidirectional=False)
    b = _batch(tok, TEXTS)
    with pytest.raises(ValueError, match="bidirectional"):
        beam_search(l2r_only, b["src"], b["src_mask"], beam=4, mode="bidirectional")


def test_no_repeat_ngram_blocking() -> None:
    from zhtools.summarize.search import block_repeats

    logp = torch.zeros(2, 10)
    block_repeats(logp, [[1, 2, 3, 1, 2], [4, 4]], 3)  # row 0: "1 2" seen before "3" -> ban 3
    assert logp[0, 3] == float("-inf") and torch.isfinite(logp[0, :3]).all()
    assert torch.isfinite(logp[1]).all()  # row 1: no earlier "4 4 x" trigram
    logp = torch.zeros(1, 10)
    block_repeats(logp, [[4, 4]], 2)  # bigram "4 4" exists -> after 4, ban 4
    assert logp[0, 4] == float("-inf")
    model, tok = tiny_model()
    b = _batch(tok, TEXTS)
    for out in beam_search(model, b["src"], b["src_mask"], beam=4, max_len=12, no_repeat_ngram=2):
        grams = list(zip(out, out[1:]))
        assert len(grams) == len(set(grams))
