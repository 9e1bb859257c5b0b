"""Tokenizer: lossless offsets on arbitrary Unicode, sentences, windows, vocabulary, HF loading."""

from __future__ import annotations

import tempfile

from helpers import SAMPLE_TEXT, SHARED, tiny_tokenizer
from hypothesis import given, settings
from hypothesis import strategies as st

from zhtools.text import split_sentences, stitch_ranges, windows
from zhtools.text.tokenizer import is_cjk

TOK = tiny_tokenizer()

# Characters from the blocks that break naive tokenizers.
_ALPHABET = st.one_of(
    st.characters(),  # any code point incl. combining marks, controls, NUL
    st.sampled_from(list("中国人的一是了北京，。！？、 \t\n\u3000") + ["\U00020000", "\U0002a6d6", "😀", "\u0301", "\x00"]),
)


def _check_lossless(text: str) -> None:
    enc = TOK.encode(text)
    assert "".join(enc.pieces()) == text
    prev = 0
    for s, e in enc.offsets:
        assert prev <= s < e <= len(text)
        prev = e
    # every visible non-space char is covered by some token span
    covered = set()
    for s, e in enc.offsets:
        covered.update(range(s, e))
    for k, ch in enumerate(text):
        if "\u4e00" <= ch <= "\u9fff":
            assert k in covered, (text, k)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_ALPHABET, st.sampled_from(["👍🏽", "e\u0301", "\u0301\u0301"])), max_size=60).map("".join))
def test_offsets_lossless_arbitrary_unicode(text: str) -> None:
    _check_lossless(text)


def test_offsets_edge_cases() -> None:
    for text in ["", "   ", "\x00", "a\ud800中\udfff", "😀🎉", "a\x00b  \t中\U00020000文e\u0301x", "ＡＢＣ１２３…", SAMPLE_TEXT]:
        _check_lossless(text)


def test_hanzi_are_single_tokens_and_latin_is_wordpiece() -> None:
    enc = TOK.encode("北京2024年GDP")
    spans = [enc.text[s:e] for s, e in enc.offsets]
    assert spans[:2] == ["北", "京"]
    assert "".join(spans) == "北京2024年GDP"
    # rare Hanzi / emoji map to [UNK] but keep their exact span
    enc = TOK.encode("\U0002a6d6😀")
    assert enc.ids == [TOK.unk_id, TOK.unk_id]
    assert enc.offsets == [(0, 1), (1, 2)]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("中国人。！？，、\n a“”")), max_size=200), st.integers(4, 40))
def test_sentences_cover_text(text: str, limit: int) -> None:
    spans = split_sentences(text, max_chars=limit)
    assert "".join(text[s:e] for s, e in spans) == text
    assert all(e - s <= limit for s, e in spans)
    assert all(s < e for s, e in spans)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 500), st.integers(1, 64), st.data())
def test_window_stitch_roundtrip(n: int, size: int, data) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    wins = windows(n, size, overlap)
    assert all(e - s <= size for s, e in wins)
    assert wins[0][0] == 0 and wins[-1][1] == n
    owned = stitch_ranges(wins)
    flat = [i for s, e in owned for i in range(s, e)]
    assert flat == list(range(n))
    for (ws, we), (os_, oe) in zip(wins, owned):
        assert ws <= os_ <= oe <= we


def test_vocab_coverage_and_autotokenizer_roundtrip() -> None:
    from transformers import AutoTokenizer

    from zhtools.text import build_vocab, tokenizer_from_vocab

    lines = [SAMPLE_TEXT] * 5 + ["罕见字只出现一次"]
    vocab = build_vocab(lines, coverage=0.95, min_count=1)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "中" in vocab and "##a" in vocab
    tok = tokenizer_from_vocab(vocab)
    with tempfile.TemporaryDirectory() as d:
        tok.save_pretrained(d)
        hf = AutoTokenizer.from_pretrained(d)
        ids = hf("北京是中国的首都")["input_ids"]
        assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id
        assert ids[1:-1] == tok.encode("北京是中国的首都").ids


def test_real_text_roundtrip() -> None:
    import pytest

    p = SHARED / "icwb2_sighan2005" / "testing" / "pku_test.utf8"
    if not p.exists():
        pytest.skip("../shared/data absent")
    lines = p.read_text(encoding="utf-8").splitlines()[:300]
    for enc, line in zip(TOK.encode_batch(lines), lines):
        assert "".join(enc.pieces()) == line


def test_known_variants_replaces_only_unknown_hanzi() -> None:
    from zhtools.text.variants import known_variants

    simplified = set("这个国家的经济发展很快干燥头发里")
    known = simplified.__contains__
    trad = "這個國家的經濟發展很快，乾燥，頭髮裡。abc😀"
    out = known_variants(trad, known)
    assert len(out) == len(trad)
    assert out == "这个国家的经济发展很快，干燥，头发里。abc😀"
    assert known_variants("这个国家", known) == "这个国家"  # known text is returned as is
    # a character the model knows is never rewritten, even where OpenCC would convert it
    assert known_variants("乾燥", lambda ch: ch in {"乾", "燥"}) == "乾燥"
    # unknown and without a known variant: left alone
    assert known_variants("鱻", known) == "鱻"
    # traditional text: characters the model knows but t2s rewrites in context are read as
    # rewritten (於 is in simplified vocabularies, rare there); simplified text keeps them
    known2 = set("对于这个问题于是我们讨论").__contains__
    assert known_variants("對於這個問題", lambda ch: known2(ch) or ch == "於") == "对于这个问题"
    many = "我们讨论这个问题" * 4
    assert known_variants(many + "於是鱻", lambda ch: known2(ch) or ch == "於") == many + "於是鱻"
    # lone surrogates (OpenCC cannot encode them) stay in place next to converted characters
    assert known_variants("這\ud800國\udfff", known) == "这\ud800国\udfff"
    assert known_variants("㐀\ud800", known) == "㐀\ud800"


def test_tokenizer_sees_traditional_hanzi_through_simplified_vocab() -> None:
    import pickle

    from zhtools.text.tokenizer import SPECIAL_TOKENS, tokenizer_from_vocab

    trad, simp = "這個國家的經濟發展很快", "这个国家的经济发展很快"
    tok = tokenizer_from_vocab(SPECIAL_TOKENS + sorted(set(simp)))
    e_t, e_s = tok.encode(trad), tok.encode(simp)
    assert e_t.ids == e_s.ids and e_t.offsets == e_s.offsets
    assert "".join(e_t.pieces()) == trad
    plain = pickle.loads(pickle.dumps(tok))
    plain.variants = False
    assert sum(i == tok.unk_id for i in plain.encode(trad).ids) >= 6


def test_surface_forms_respell_generated_tokens_as_the_source() -> None:
    tok = tiny_tokenizer()
    src = tok.encode("中国GDP和ＧＤＰ增长，World年")
    surface = tok.surface_forms(src)
    ids = tok.encode("gdp增长2024年，world").ids
    assert tok.decode_chars(ids) == "gdp增长2024年,world"  # the vocabulary's normalised spelling
    assert tok.decode_chars(ids, surface) == "GDP增长2024年，World"  # first spelling in the source
    # Hanzi keep the vocabulary's character; tokens absent from the source are left as they are
    assert all(not is_cjk(v[0]) for v in surface.values())
    assert tok.decode_chars(tok.encode("xyz").ids, surface) == tok.decode_chars(tok.encode("xyz").ids)
