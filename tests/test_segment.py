"""Segmentation: lossless on arbitrary strings, pre-split rules, rules, pickling, CLI."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import regex
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zhtools.segment import Segmenter, otsu_threshold, presplit


@pytest.fixture(scope="module")
def seg(model_dir) -> Segmenter:
    s = Segmenter(model_dir)
    s.calibrate(["北京是中国的首都。", "今天天气很好，我们去公园散步吧。"] * 3)
    return s


def test_presplit_rules() -> None:
    text = "2024年GDP增长5.2%，😀 Hello世界"
    runs = [(text[s:e], k) for s, e, k in presplit(text)]
    assert runs == [("2024年", "num"), ("GDP", "alnum"), ("增长", "han"), ("5.2%", "num"),
                    ("，", "other"), ("😀", "other"), (" ", "space"), ("Hello", "alnum"), ("世界", "han")]
    text = "１９９８年3张G20 20G 1,000万元"
    assert [text[s:e] for s, e, _k in presplit(text)] == ["１９９８年", "3", "张", "G20", " ", "20G", " ", "1,000万", "元"]
    # signed numbers, middle-dot decimals, fractions, ratios; repeated dashes/ellipses are one token
    text = "气温－5℃，比分3∶0，占1／3，增长１４·９％。他说——好……对...5－3"
    assert [text[s:e] for s, e, _k in presplit(text)] == [
        "气温", "－5", "℃", "，", "比分", "3∶0", "，", "占", "1／3", "，", "增长", "１４·９％", "。", "他说",
        "——", "好", "……", "对", "...", "5", "－", "3"]
    text = "G-20和马克思·恩格斯—"
    assert [text[s:e] for s, e, _k in presplit(text)] == ["G", "-", "20", "和马克思", "·", "恩格斯", "—"]


def test_presplit_urls_scripts() -> None:
    text = "详见https://www.gov.cn/zhengce/a.htm?id=3&x=1。或www.baidu.com，邮箱123456@qq.com和a.b@pku.edu.cn."
    assert [text[s:e] for s, e, _k in presplit(text)] == [
        "详见", "https://www.gov.cn/zhengce/a.htm?id=3&x=1", "。", "或", "www.baidu.com", "，", "邮箱",
        "123456@qq.com", "和", "a.b@pku.edu.cn", "."]
    text = "（见http://a.cn/x）"  # a closing bracket or full stop after a URL is not part of it
    assert [text[s:e] for s, e, _k in presplit(text)] == ["（", "见", "http://a.cn/x", "）"]
    text = "Zhōngguó是café，α粒子，Москва，カタカナ・テスト，한국어"
    assert [(text[s:e], k) for s, e, k in presplit(text) if k != "other"] == [
        ("Zhōngguó", "alnum"), ("是", "han"), ("café", "alnum"), ("α", "alnum"), ("粒子", "han"),
        ("Москва", "alnum"), ("カタカナ", "kana"), ("テスト", "kana"), ("한국어", "hangul")]
    assert [k for _s, _e, k in presplit("3×4÷2")] == ["num", "other", "num", "other", "num"]


def test_numeral_is_cut_off_a_following_measure_word() -> None:
    """Numeral + classifier convention (PKU, CTB, UD): only a word that starts with the numeral
    and continues with a listed measure word is cut; years, ordinals alone and lexicalised words
    that merely contain a numeral are left whole, in simplified and traditional script."""
    from zhtools.segment.segmenter import split_measure
    from zhtools.segment.tagger import words_from_margins

    cut = {"一种": ["一", "种"], "两个": ["两", "个"], "三年": ["三", "年"], "五十年": ["五十", "年"],
           "一百零五个": ["一百零五", "个"], "第一次": ["第一", "次"], "几年": ["几", "年"],
           "三十多个": ["三十多", "个"], "本书": ["本书"], "兩個": ["兩", "個"], "幾項": ["幾", "項"]}
    kept = ["一九九八年", "二○○一年", "进一步", "一些", "一起", "十分", "第一", "零件", "十二月", "万一",
            "千万", "千米", "多少", "几乎", "一", "中国"]
    for w, parts in cut.items():
        assert split_measure(w) == parts, w
    for w in kept:
        assert split_measure(w) == [w], w
    # the cut applies to the model's words: a Hanzi run joined whole by its margins
    text = "三本书，这是第一次。"
    join_all = {k: 1.0 for k in range(1, len(text))}
    assert words_from_margins(text, join_all) == ["三", "本书", "，", "这是第一次", "。"]
    assert words_from_margins(text, join_all, measure=False) == ["三本书", "，", "这是第一次", "。"]


def test_words_keep_grapheme_clusters() -> None:
    family, flag, thumb = "👨\u200d👩\u200d👧", "🇨🇳", "👍🏽"
    text = f"我们{family}去{flag}看{thumb}！e\u0301和葛\U000e0100城\u2764\ufe0f"
    words = Segmenter(rule="chars").segment(text)
    assert "".join(words) == text
    for cluster in (family, flag, thumb, "e\u0301", "葛\U000e0100", "\u2764\ufe0f"):
        assert cluster in words


def _cuts_inside_graphemes(text: str, words: list[str]) -> list[int]:
    cuts = np.cumsum([len(w) for w in words])[:-1].tolist()
    starts = {m.start() for m in regex.finditer(r"\X", text)}
    return [c for c in cuts if c not in starts]


_CHARS = st.sampled_from(list("中国人的一是了北京首都天气好，。！？ \t\n1a.%😀\x00")
                         + ["\U00020000", "\u0301", "\u200d", "\ufe0f", "\U0001f3fd", "\U0001f1e8", "\r"])


@settings(max_examples=10_000, deadline=None)
@given(st.lists(_CHARS, max_size=12).map("".join))
def test_lossless_chars_rule(text: str) -> None:
    words = Segmenter(rule="chars").segment(text)
    assert "".join(words) == text
    assert all(words)
    assert not _cuts_inside_graphemes(text, words)


_STRINGS = st.lists(st.lists(_CHARS, max_size=30).map("".join), min_size=20, max_size=20)


@settings(max_examples=500, deadline=None)
@given(_STRINGS)
def test_lossless_model_rules(seg, texts: list[str]) -> None:
    """500 examples x 20 strings = 10,000 strings through the encoder path."""
    for rule in ("otsu", "dp", "threshold"):
        seg.rule = rule
        for text, words in zip(texts, seg.segment_many(texts)):
            assert "".join(words) == text and all(words)
            assert not _cuts_inside_graphemes(text, words)
    seg.rule = "otsu"


def test_segment_many_matches_single_and_long_text(seg) -> None:
    texts = ["北京是中国的首都。", "", "今天天气很好", "中" * 300]
    many = seg.segment_many(texts)
    assert [seg.segment(t) for t in texts] == many
    assert "".join(many[3]) == texts[3]


def test_join_margins_agree_with_otsu_words(seg) -> None:
    texts = ["北京是中国的首都。", "今天天气很好，我们去公园散步吧。", "ABC 中国", ""]
    for text, words, m in zip(texts, seg.segment_many(texts), seg.join_margins(texts)):
        starts, pos = set(), 0
        for w in words:
            starts.add(pos)
            pos += len(w)
        han_inner = {k for s, e, kind in presplit(text) if kind == "han" for k in range(s + 1, e)}
        assert set(m) == han_inner  # one margin per adjacent Hanzi pair, nothing else
        assert all((k not in starts) == (v >= 0) for k, v in m.items())  # >= 0 <=> joined


def test_tagger_signal_is_calibrated_and_lossless(model_dir, tmp_path: Path) -> None:
    from helpers import tiny_bert_folder

    from zhtools.segment.segmenter import SHIPPED_TAGGER

    assert "tagger" not in Segmenter(model_dir).signals  # a user's encoder: impacts (+ PMI) only
    assert ("tagger" in Segmenter().signals) == (SHIPPED_TAGGER / "config.json").exists()
    from transformers import AutoModelForTokenClassification

    from zhtools.models import save_model
    from zhtools.models.loader import load_trainable

    torch.manual_seed(0)  # a saved random token-classification head: a noisy but fixed view
    m, tok = load_trainable(str(tiny_bert_folder(tmp_path / "base")), AutoModelForTokenClassification, num_labels=2)
    tg = tmp_path / "tagger"
    save_model(m, tok, tg)
    s = Segmenter(model_dir, tagger=tg, signals=("impact", "pmi", "tagger"))
    cal = s.calibrate(["北京是中国的首都。", "今天天气很好，我们去公园散步吧。"] * 3)
    assert cal.tagger == str(tg.resolve()) and cal.sd["tagger"] > 0
    assert {"tagger", "impact+tagger", "impact+pmi+tagger"} <= set(cal.thresholds)
    texts = ["北京是中国的首都。", "ABC 中国😀人民", "", "中" * 200]
    for text, words, m in zip(texts, s.segment_many(texts), s.join_margins(texts)):
        assert "".join(words) == text
        starts = {sum(map(len, words[:i])) for i in range(len(words))}
        assert all((k not in starts) == (v >= 0) for k, v in m.items())
    assert pickle.loads(pickle.dumps(s)).segment(texts[0]) == s.segment(texts[0])
    with pytest.raises(ValueError):
        Segmenter(model_dir, signals=("tagger", "bogus"))


def test_pickle_roundtrip(seg) -> None:
    s2 = pickle.loads(pickle.dumps(seg))
    assert s2.segment("北京是中国的首都") == seg.segment("北京是中国的首都")


def test_otsu_scale_free() -> None:
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 500), rng.normal(6, 1, 500)])
    t = otsu_threshold(v)
    assert 2 < t < 4
    assert abs(otsu_threshold(v * 10 + 5) - (t * 10 + 5)) < 0.5


def test_dp_respects_max_word(seg) -> None:
    seg2 = Segmenter(seg.model, rule="dp", max_word=2)
    seg2.calibration = seg.calibration
    assert all(len(w) <= 2 for w in seg2.segment("中华人民共和国成立了"))


def _cli(args, inp: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "zhtools", *args], input=inp,
                          capture_output=True, timeout=300)


def test_cli_line_count_and_bad_utf8(tmp_path: Path, model_dir: str) -> None:
    src = tmp_path / "in.txt"
    src.write_text("北京是中国的首都。\n\n   \nHello 世界\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    r = _cli(["segment", str(src), "-o", str(out), "--model", model_dir, "-q"])
    assert r.returncode == 0, r.stderr
    lines = out.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 5 and lines[1] == "" and lines[2] == "   "
    assert lines[0].replace(" ", "") == "北京是中国的首都。"
    bad = tmp_path / "bad.txt"
    bad.write_bytes("好的\n".encode() + b"\xff\xfe\n")
    out2 = tmp_path / "out2.txt"
    r = _cli(["segment", str(bad), "-o", str(out2), "--model", model_dir, "-q"])
    assert r.returncode == 2 and b"line 2" in r.stderr
    assert not out2.exists()
    r = _cli(["segment", "--rule", "chars", "--sep", "/"], "中国\n\nab\n".encode())
    assert r.stdout.decode() == "中/国\n\nab\n"


def test_cli_signals_option(model_dir: str) -> None:
    """--signals picks the boundary signals (as Segmenter(signals=...)); a bad name is a usage
    error (exit 2), and so is --signals with --fast."""
    text = "他买了三本书，这是第一次。"
    r = _cli(["segment", "--model", model_dir, "--signals", "impact", "--sep", "/", "-q"], text.encode())
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().rstrip("\n").split("/") == Segmenter(model_dir, signals=("impact",)).segment(text)
    r = _cli(["segment", "--model", model_dir, "--signals", "impact,bogus"], text.encode())
    assert r.returncode == 2 and b"signals" in r.stderr
    r = _cli(["segment", "--fast", "--signals", "impact"], text.encode())
    assert r.returncode == 2 and b"--signals" in r.stderr


def test_module_helpers_survive_subpackage_import(model_dir, seg) -> None:
    import zhtools

    zhtools._segmenters[model_dir] = seg
    a = zhtools.segment("北京是中国的首都", model=model_dir)
    import zhtools.segment.segmenter  # noqa: F401 - rebinds the attribute to the package
    from zhtools import segment

    assert zhtools.segment("北京是中国的首都", model=model_dir) == a == segment("北京是中国的首都", model=model_dir)
    assert zhtools.lcut("北京是中国的首都", model=model_dir) == a == list(zhtools.cut("北京是中国的首都", model=model_dir))
    with pytest.raises(TypeError):
        zhtools.segment(b"bytes")


def test_calibration_is_tied_to_the_layer(seg, tmp_path: Path) -> None:
    """A stored calibration is reused only for the encoder layer it was fitted on."""
    import json
    import shutil

    from zhtools.segment.segmenter import CALIBRATION_FILE, save_calibration

    n = seg.engine.enc.model.config.num_hidden_layers
    assert seg.calibration.layer == seg.engine.layer == max(1, n // 2)  # "auto": no own layer -> middle
    d = tmp_path / "m"
    shutil.copytree(seg.model, d)
    save_calibration(seg.calibration, d / CALIBRATION_FILE)
    reused = Segmenter(str(d))
    assert reused.ensure_calibrated().thresholds == seg.calibration.thresholds
    last = Segmenter(str(d), layer=-1)
    cal = last.ensure_calibrated()  # fitted anew on the bundled sample, for the last layer
    assert cal.layer == -1 and cal.mu["impact"] != seg.calibration.mu["impact"]
    assert json.loads((d / CALIBRATION_FILE).read_text())["layer"] == seg.calibration.layer


def test_concurrent_first_use_loads_once(tmp_path: Path, monkeypatch) -> None:
    """A service's worker threads calling zhtools.segment at once: one model load, one
    calibration, the same words as sequential calls."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from helpers import SAMPLE_TEXT, tiny_encoder

    import zhtools
    from zhtools.models import loader
    from zhtools.segment import segmenter as segmod

    tiny_encoder("bert", tmp_path)
    model = str(tmp_path / "bert")
    loads, fits = [], []
    real_load, real_cal = loader.load_encoder, segmod.Segmenter.calibrate

    def slow_load(*a, **kw):  # noqa: ANN002, ANN003, ANN202 - widen the race window
        loads.append(threading.get_ident())
        time.sleep(0.3)
        return real_load(*a, **kw)

    def counted_cal(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        fits.append(1)
        time.sleep(0.1)
        return real_cal(self, *a, **kw)

    monkeypatch.setattr(loader, "load_encoder", slow_load)
    monkeypatch.setattr(segmod.Segmenter, "calibrate", counted_cal)
    texts = [SAMPLE_TEXT[k : k + 12 + k % 9] for k in range(24)]
    with ThreadPoolExecutor(8) as ex:
        par = list(ex.map(lambda t: zhtools.segment(t, model=model), texts))
    assert len(loads) == 1 and len(fits) == 1
    assert par == [zhtools.segment(t, model=model) for t in texts]
    assert all("".join(w) == t for w, t in zip(par, texts))
