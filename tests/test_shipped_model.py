"""Checks on the shipped default encoder (skipped only while none is shipped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import SHARED

from zhtools.models import default_model_path, load_encoder

MODEL = default_model_path()
pytestmark = pytest.mark.skipif(not (MODEL / "config.json").exists(), reason="no shipped model yet")


def _top5(enc, text: str) -> list[str]:
    tok = enc.tokenizer
    pre, post = text.split("[MASK]")
    ids = tok.with_specials(tok.encode(pre).ids + [tok.mask_id] + tok.encode(post).ids)
    pos = ids.index(tok.mask_id)
    with torch.inference_mode():
        logits = enc.model(input_ids=torch.tensor([ids])).logits[0, pos]
    return tok.hf.convert_ids_to_tokens(logits.topk(5).indices.tolist())


def test_fill_mask_sanity() -> None:
    enc = load_encoder(None, head="mlm")
    assert "国" in _top5(enc, "中华人民共和[MASK]")


def test_fill_mask_capital() -> None:
    enc = load_encoder(None, head="mlm")
    assert "都" in _top5(enc, "北京是中国的首[MASK]")


def test_plain_transformers_loads_it() -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    m = AutoModelForMaskedLM.from_pretrained(str(MODEL))
    t = AutoTokenizer.from_pretrained(str(MODEL))
    assert m.config.vocab_size == len(t)
    assert (MODEL / "model.safetensors").stat().st_size <= 40 * 1024 * 1024
    assert (MODEL / "MODEL_CARD.md").exists()
    cal = json.loads((MODEL / "segmenter_calibration.json").read_text())
    assert cal["pairs"] > 1000
    from zhtools.segment import Segmenter

    assert cal["layer"] == Segmenter().engine.layer  # no re-calibration at first use


def test_shipped_model_names_its_probe_layer() -> None:
    """The shipped encoder's config names the layer ``layer="auto"`` reads (chosen label-free for
    segmentation and on UD dev for parsing); segmenter and parser both use it by default."""
    from zhtools.parse import Parser
    from zhtools.probe.engine import PROBE_LAYER_KEY
    from zhtools.segment import Segmenter

    cfg = json.loads((MODEL / "config.json").read_text())
    k = cfg[PROBE_LAYER_KEY]
    assert 1 <= k < cfg["num_hidden_layers"]
    assert Segmenter().engine.layer == Parser().engine.layer == k


def test_tokenizer_roundtrip_real_text() -> None:
    from zhtools.text import ZhTokenizer

    p = SHARED / "icwb2_sighan2005" / "testing" / "pku_test.utf8"
    if not p.exists():
        pytest.skip("../shared/data absent")
    tok = ZhTokenizer.from_pretrained(MODEL)
    lines = p.read_text(encoding="utf-8").splitlines()
    unk = total = 0
    for enc, line in zip(tok.encode_batch(lines), lines):
        assert "".join(enc.pieces()) == line
        unk += sum(i == tok.unk_id for i in enc.ids)
        total += len(enc.ids)
    assert unk / total < 0.01  # the vocabulary covers real news text


def test_default_segment_is_lossless_on_real_text() -> None:
    import zhtools

    text = "北京是中国的首都，也是一座历史悠久的城市。2024年GDP增长5.2%！😀"
    words = zhtools.segment(text)
    assert "".join(words) == text
    assert "2024年" in words and "5.2%" in words and "😀" in words


def test_default_segment_cuts_numerals_off_measure_words() -> None:
    """No word of the default segmenter or the fast tagger starts with a numeral + measure word
    (a rule on top of the model's words); with ``measure=False`` the model's own words remain."""
    from zhtools.segment import Segmenter
    from zhtools.segment.segmenter import split_measure
    from zhtools.segment.tagger import Tagger

    texts = ["他买了三本书和两个苹果，这是第一次。", "一年以后，我们又进行了一项调查，发现了几种新药。",
             "兩個學生參加了這次比賽。"]
    for seg in (Segmenter(), Tagger()):
        for text, words in zip(texts, seg.segment_many(texts)):
            assert "".join(words) == text
            assert all(split_measure(w) == [w] for w in words), words
    raw = [w for ws in Tagger(measure=False).segment_many(texts) for w in ws]
    assert any(split_measure(w) != [w] for w in raw)  # the rule had something to do


def test_traditional_text_segments_like_its_simplified_form() -> None:
    """The shipped models were built from simplified text; traditional characters reach them as
    their simplified variants (zhtools.text.variants), so a traditional sentence gets the same
    word boundaries as its simplified conversion, and the words are the caller's characters."""
    import zhtools
    from zhtools.segment.tagger import Tagger

    pairs = [("這個國家的經濟發展很快，人民的生活水準不斷提高。", "这个国家的经济发展很快，人民的生活水准不断提高。"),
             ("台灣的電腦產業在過去二十年裡發生了巨大變化。", "台湾的电脑产业在过去二十年里发生了巨大变化。")]
    tagger = Tagger()
    for trad, simp in pairs:
        for seg in (zhtools.segment, tagger.segment):
            words_t, words_s = seg(trad), seg(simp)
            assert "".join(words_t) == trad
            assert [len(w) for w in words_t] == [len(w) for w in words_s], (words_t, words_s)
            assert len(words_t) < 0.7 * len(trad)  # words, not characters


def test_shipped_summarizer_titles_a_real_abstract() -> None:
    """zhtools.summarize's default model loads from data/models and produces a short title that
    reuses the abstract's vocabulary (all three decoding modes)."""
    import zhtools
    from zhtools.summarize import default_summarizer_path

    if not (default_summarizer_path() / "summarizer.json").exists():
        pytest.skip("no shipped summarizer")
    text = ("为了研究交换超立方体网络容错路由问题,引入了相邻结点集合类的概念,提出了相邻结点集的求解公式。"
            "对于满足任意子连通性条件的交换超立方体网络,给出了基于相邻结点集合类的自适应容错路由算法。")
    for mode in ("bidirectional", "l2r", "r2l"):
        title = zhtools.summarize(text, mode=mode)
        assert 2 <= len(title) <= 40, (mode, title)
        assert sum(ch in text for ch in title) / len(title) > 0.8, (mode, title)
    assert zhtools.summarize("") == ""


def test_shipped_summarizer_keeps_the_sources_spelling_of_latin_words() -> None:
    """The vocabulary is lowercase; a title that copies LSTM / CNN / SVM from the abstract
    spells them as the abstract does."""
    import re

    import zhtools
    from zhtools.summarize import default_summarizer_path

    if not (default_summarizer_path() / "summarizer.json").exists():
        pytest.skip("no shipped summarizer")
    text = ("提出了一种基于LSTM和CNN的中文文本分类方法，在THUCNews数据集上的实验表明，该方法优于传统的SVM模型。"
            "该方法首先用CNN提取局部特征，再用LSTM建模长距离依赖。")
    title = zhtools.summarize(text)
    latin = re.findall(r"[A-Za-z]+", title)
    assert latin, title  # the title copies at least one of the acronyms
    assert all(w.upper() == w for w in latin if w.lower() in {"lstm", "cnn", "svm"}), title
    assert "LSTM" in title or "CNN" in title, title


def test_shipped_summarizer_answers_in_the_input_script() -> None:
    """A traditional abstract is read through the simplified vocabulary and titled in
    traditional script (script="auto"); script="model" keeps the model's simplified output."""
    import zhtools
    from zhtools.summarize import Summarizer, default_summarizer_path
    from zhtools.text.variants import convert, looks_traditional

    if not (default_summarizer_path() / "summarizer.json").exists():
        pytest.skip("no shipped summarizer")
    simp = ("为了研究交换超立方体网络容错路由问题,引入了相邻结点集合类的概念,提出了相邻结点集的求解公式。"
            "对于满足任意子连通性条件的交换超立方体网络,给出了基于相邻结点集合类的自适应容错路由算法。")
    trad = convert(simp, "s2t")
    assert looks_traditional(trad) and not looks_traditional(simp)
    as_model = zhtools.summarize(trad, script="model")
    auto = zhtools.summarize(trad)
    assert auto == convert(as_model, "s2t") and auto != as_model
    assert as_model == zhtools.summarize(simp)  # the same ids reach the model
    assert zhtools.summarize(simp) == zhtools.summarize(simp, script="model")
    with pytest.raises(ValueError):
        Summarizer(script="klingon")


def test_shipped_tagger_is_lossless_and_close_to_its_teacher() -> None:
    """The shipped fast tagger: lossless on tricky text, and on real PKU lines it agrees with
    gold about as well as the impact segmenter it was trained from (no gold in its training)."""
    from zhtools.eval.cws import read_segmented, score_cws
    from zhtools.segment.tagger import Tagger

    tagger = Tagger()
    tricky = ["", "  ", "北京是中国的首都，2024年GDP增长5.2%！😀", "中国" * 200, "a\u0000b\t中文"]
    for text, words in zip(tricky, tagger.segment_many(tricky)):
        assert "".join(words) == text
    p = SHARED / "icwb2_sighan2005" / "gold" / "pku_test_gold.utf8"
    if not p.exists():
        pytest.skip("../shared/data absent")
    gold = [g for g in read_segmented(p) if g][:300]
    pred = tagger.segment_many(["".join(g) for g in gold])
    assert score_cws(gold, pred)["f1"] > 0.75  # measured 0.795 on all 1,944 lines (every char a word: 0.34)
    # bf16 autocast (zhtools segment --bf16): lossless, nearly the same words
    fast = Tagger(bf16=True)
    for text, words in zip(tricky, fast.segment_many(tricky)):
        assert "".join(words) == text
    same = sum(a == b for a, b in zip(pred, fast.segment_many(["".join(g) for g in gold])))
    assert same >= 0.9 * len(gold)  # measured 99.3% of all PKU lines


def test_fast_cli_runs_the_shipped_tagger(tmp_path: Path) -> None:
    """`zhtools segment --fast`: the shipped tagger alone (no impacts), N lines in -> N lines out,
    lossless; options that only the impact segmenter has are refused."""
    import subprocess
    import sys

    from zhtools.segment.tagger import Tagger

    lines = ["北京是中国的首都。", "", "2024年GDP增长5.2%😀", "中华人民共和国成立了"]
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "zhtools", "segment", str(inp), "--fast", "--sep", "/", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")[:-1]
    assert [x.replace("/", "") for x in out] == lines
    # --no-measure keeps the tagger's own numeral + measure words; by default they are cut
    from zhtools.segment.segmenter import split_measure

    text = "他买了三本书和两个苹果，一年以后又进行了一项调查。"
    cut, kept = (subprocess.run([sys.executable, "-m", "zhtools", "segment", "--fast", "--sep", "/", "-q", *extra],
                                input=text, capture_output=True, text=True) for extra in ([], ["--no-measure"]))
    assert cut.returncode == kept.returncode == 0, cut.stderr + kept.stderr
    a, b = cut.stdout.strip().split("/"), kept.stdout.strip().split("/")
    assert a != b and a == [p for w in b for p in split_measure(w)]
    assert out == ["/".join(w) for w in Tagger().segment_many(lines)]
    assert out[0].split("/")[:3] == ["北京", "是", "中国"]
    r = subprocess.run([sys.executable, "-m", "zhtools", "segment", str(inp), "--fast", "--rule", "threshold"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--fast" in r.stderr


def test_shipped_encoder_finds_the_verb_as_root() -> None:
    """The verb-probe root rule on the shipped encoder's own MLM head picks the main verb of
    simple sentences (given words)."""
    from zhtools.parse import Parser

    given = [["他", "昨天", "买", "了", "一", "本", "书", "。"], ["我们", "明天", "去", "北京", "参观", "博物馆", "。"],
             ["这", "座", "城市", "有", "很多", "公园", "。"], ["中国", "的", "首都", "是", "北京", "。"]]
    res = Parser().parse_many([None] * len(given), given)
    assert [r.words[r.heads.index(0)] for r in res] == ["买", "去", "有", "是"]


def test_shipped_word_classes_are_distributional() -> None:
    """The shipped parser loads its self-trained word-class model, and the classes group words by
    their contexts (the same word in another sentence may change class): numerals and measure
    words together, 的 with 的, 。 with 。, and those three classes apart."""
    from zhtools.parse import Parser

    p = Parser()
    assert p.word_classes is not None and len(p.word_classes.centroids) == 12
    given = [["他", "买", "了", "三", "本", "书", "。"], ["我们", "买", "了", "五", "本", "杂志", "。"],
             ["中国", "的", "首都", "是", "北京", "。"], ["北京", "的", "天气", "很", "好", "。"]]
    res = p.parse_many([None] * len(given), given)
    c = [dict(zip(r.words, r.classes.tolist())) for r in res]
    num, de, stop = c[0]["三"], c[2]["的"], c[0]["。"]
    assert c[1]["五"] == c[0]["本"] == c[1]["本"] == num and c[3]["的"] == de
    assert all(x["。"] == stop for x in c) and len({num, de, stop}) == 3
