"""Tests for zhtools.eval: hand-worked metric examples, real-data checks, and the eval CLI."""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import pytest

from zhtools.eval.cli import add_eval_parser
from zhtools.eval.cls import score_cls
from zhtools.eval.conllu import Sentence, is_punct, parse_conllu, read_conllu, write_conllu
from zhtools.eval.cws import read_segmented, read_words, score_cws
from zhtools.eval.dep import (
    bracket_f1,
    dep_brackets,
    drop_punct_spans,
    left_branching_spans,
    left_chain,
    random_projective,
    right_branching_spans,
    right_chain,
    score_dep,
    score_dep_spans,
)
from zhtools.eval.summ import score_summ

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZHTOOLS_SHARED_DATA", ROOT.parent / "shared" / "data"))
SIGHAN = SHARED / "icwb2_sighan2005" / "gold"
GSD = SHARED / "ud_chinese" / "gsdsimp"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


# ----------------------------------------------------------------------------------------- cws
def test_cws_hand_example():
    # Line 1 gold spans (0,1)(1,2)(2,4)(4,7) vs pred 我 爱北京 天安 门 = (0,1)(1,4)(4,6)(6,7):
    # only 我 matches. Line 2 is identical (3 matches). gold 7, pred 7, correct 4:
    # P = R = F = 4/7. Training words lack 天安门 only: OOV gold = {天安门} (missed) -> 0/1,
    # IV gold = 6 words, found 我 他 来 了 -> 4/6; OOV rate 1/7.
    gold = [["我", "爱", "北京", "天安门"], ["他", "来", "了"]]
    pred = [["我", "爱北京", "天安", "门"], ["他", "来", "了"]]
    res = score_cws(gold, pred, {"我", "爱", "北京", "他", "来", "了"})
    assert (res["gold_words"], res["pred_words"], res["correct"]) == (7, 7, 4)
    for k in ("precision", "recall", "f1"):
        assert res[k] == pytest.approx(4 / 7)
    assert res["oov_recall"] == 0.0
    assert res["iv_recall"] == pytest.approx(4 / 6)
    assert res["oov_rate"] == pytest.approx(1 / 7)
    no_vocab = score_cws(gold, pred)
    assert no_vocab["oov_recall"] is None and no_vocab["iv_recall"] is None
    assert no_vocab["oov_rate"] is None


def test_cws_uses_spans_not_bags():
    # gold 中|国中 = (0,1)(1,3); pred 中国|中 = (0,2)(2,3): no span agrees although a
    # bag-of-words comparison would count 中 once.
    res = score_cws([["中", "国中"]], [["中国", "中"]])
    assert res["correct"] == 0 and res["f1"] == 0.0
    assert score_cws([["中国"]], [["中国"]])["f1"] == 1.0


def test_cws_text_mismatch_names_line():
    with pytest.raises(ValueError, match="line 2"):
        score_cws([["我"], ["你", "好"]], [["我"], ["你", "们"]])
    with pytest.raises(ValueError, match="lines"):
        score_cws([["我"]], [["我"], ["你"]])


def test_read_segmented_separators(tmp_path):
    f = tmp_path / "seg.utf8"
    f.write_bytes("我  爱　北京 天安门  \r\n\r\n他 来了\n".encode())
    assert read_segmented(f) == [["我", "爱", "北京", "天安门"], [], ["他", "来了"]]
    w = tmp_path / "words.utf8"
    w.write_text("北京\r\n天安门\n\n", encoding="utf-8")
    assert read_words(w) == {"北京", "天安门"}


def test_cws_jieba_pku_slice():
    gold_path = _need(SIGHAN / "pku_test_gold.utf8")
    jieba = pytest.importorskip("jieba")
    gold = read_segmented(gold_path)
    assert len(gold) == 1945 and not any("\r" in w for line in gold for w in line)
    gold = gold[:200]
    words = read_words(SIGHAN / "pku_training_words.utf8")
    pred = [jieba.lcut("".join(line), HMM=True) if line else [] for line in gold]
    res = score_cws(gold, pred, words)
    # measured: P 0.8506, R 0.7835, F1 0.8157, OOV recall 0.5487, IV recall 0.7964
    # (10,877 gold words, OOV rate 0.0519) with jieba 0.42.1
    assert 0.7857 <= res["f1"] <= 0.8457
    assert res["gold_words"] == 10877
    assert 0.0 < res["oov_recall"] < res["iv_recall"] < 1.0


# ----------------------------------------------------------------------------------------- dep
def test_score_dep_hand_example():
    # gold heads [2,0,2,3], pred [2,0,4,2]: heads agree for words 1, 2 -> UAS 2/4.
    # gold edges {1,2} {0,2} {2,3} {3,4}; pred edges {1,2} {0,2} {3,4} {2,4}: 3/4 found -> UUAS.
    # word 4 is punctuation: without it UAS 2/3, UUAS 2/3.
    res = score_dep([[2, 0, 2, 3]], [[2, 0, 4, 2]], [[False, False, False, True]])
    assert res["uas"] == 0.5 and res["uuas"] == 0.75
    assert res["uas_nopunct"] == pytest.approx(2 / 3)
    assert res["uuas_nopunct"] == pytest.approx(2 / 3)
    assert (res["sentences"], res["words"]) == (1, 4)
    assert score_dep([[2, 0, 2, 3]], [[2, 0, 4, 2]])["uas_nopunct"] is None
    with pytest.raises(ValueError, match="sentence 1"):
        score_dep([[2, 0]], [[0]])


def test_score_dep_spans_hand_example():
    # gold 我(→爱) 爱(root) 北京(→天安门) 天安门(→爱): spans (0,1)(1,2)(2,4)(4,7).
    # pred 我(→爱) 爱(root) 北京天安门(→爱): spans (0,1)(1,2)(2,7).
    # 我 and 爱 match span and head span; 北京, 天安门 have no matching span -> UAS 2/4.
    # word spans: 2 correct of 3 predicted, 4 gold -> P 2/3, R 1/2, F1 4/7.
    gw, gh = [["我", "爱", "北京", "天安门"]], [[2, 0, 4, 2]]
    pw, ph = [["我", "爱", "北京天安门"]], [[2, 0, 2]]
    res = score_dep_spans(gw, gh, pw, ph)
    assert res["uas"] == 0.5 and res["uuas"] == 0.5
    assert res["word_f1"] == pytest.approx(4 / 7)
    assert res["words"] == 4 and res["pred_words"] == 3
    # with the gold segmentation it agrees with score_dep
    same = score_dep_spans(gw, gh, gw, [[2, 0, 2, 3]], [[False, False, False, True]])
    plain = score_dep(gh, [[2, 0, 2, 3]], [[False, False, False, True]])
    for k in ("uas", "uuas", "uas_nopunct", "uuas_nopunct"):
        assert same[k] == pytest.approx(plain[k])
    assert same["word_f1"] == 1.0
    with pytest.raises(ValueError, match="texts differ"):
        score_dep_spans(gw, gh, [["我", "爱", "北京"]], [[2, 0, 2]])


def _is_projective_tree(heads: list[int]) -> bool:
    n = len(heads)
    if sum(h == 0 for h in heads) != 1 or any(not 0 <= h <= n for h in heads):
        return False
    dep_brackets(heads)  # raises on cycles
    arcs = [(min(i, h), max(i, h)) for i, h in enumerate(heads, start=1) if h]
    return not any(a < c < b < d for a, b in arcs for c, d in arcs)


def test_baselines():
    assert right_chain(4) == [2, 3, 4, 0]
    assert left_chain(4) == [0, 1, 2, 3]
    assert right_chain(0) == [] and left_chain(1) == [0] and random_projective(0) == []
    rng = random.Random(0)
    seen = set()
    for n in range(1, 9):
        for _ in range(30):
            heads = random_projective(n, rng)
            assert _is_projective_tree(heads), heads
            seen.add(tuple(heads))
    assert len(seen) > 100  # not a fixed tree
    np = pytest.importorskip("numpy")
    assert _is_projective_tree(random_projective(20, np.random.default_rng(1)))
    assert random_projective(10, 3) == random_projective(10, 3)


def test_dep_brackets_and_bracket_f1():
    # 我(→爱) 爱(root) 北京(→天安门) 天安门(→爱): the only multi-word non-root subtree is
    # 北京 天安门 = (2,4).
    assert dep_brackets([2, 0, 4, 2]) == {(2, 4)}
    assert right_branching_spans(4) == {(1, 4), (2, 4)}
    assert left_branching_spans(4) == {(0, 2), (0, 3)}
    for n in range(1, 7):  # a right chain is a left-branching tree and vice versa
        assert dep_brackets(right_chain(n)) == left_branching_spans(n)
        assert dep_brackets(left_chain(n)) == right_branching_spans(n)
    with pytest.raises(ValueError):
        dep_brackets([2, 1])  # cycle, no root
    # sentence 1: gold {(2,4)} vs pred {(1,4),(2,4)}: P 1/2, R 1, F 2/3
    # sentence 2: both empty -> F 1; sentence 3: gold empty, pred {(0,2)} -> P 0, R 1, F 0
    # mean F = (2/3 + 1 + 0) / 3 = 5/9; micro: tp 1, gold 1, pred 3 -> P 1/3, R 1, F 1/2
    res = bracket_f1([{(2, 4)}, set(), set()], [{(1, 4), (2, 4)}, set(), {(0, 2)}])
    assert res["f1"] == pytest.approx(5 / 9)
    assert res["f1_micro"] == pytest.approx(0.5)
    assert res["per_sentence"][2] == {"precision": 0.0, "recall": 1.0, "f1": 0.0}
    assert bracket_f1([{(0, 2)}], [set()])["f1"] == 0.0


def test_drop_punct_spans_follows_evalb():
    # 我 爱 北京 ， 天安门 。 (punct at 3 and 5): right-branching spans end at the final 。,
    # so with punctuation scored they can never match a subtree that does not contain it
    punct = [False, False, False, True, False, True]
    spans = {(1, 6), (2, 6), (3, 6), (4, 6), (2, 5), (0, 2)}
    # (1,6)->(1,4) (2,6)->(2,4) (3,6)->(3,4) one word, (4,6)->(3,4) one word, (2,5)->(2,4), (0,2)
    assert drop_punct_spans(spans, punct) == {(1, 4), (2, 4), (0, 2)}
    assert drop_punct_spans({(0, 5)}, punct) == set()  # covers every non-punct word: the root span
    assert drop_punct_spans(set(), [True, True]) == set()


# -------------------------------------------------------------------------------------- conllu
def test_conllu_round_trip_and_special_lines():
    text = (
        "# sent_id = x1\n# text = 我们走了。\n"
        "1-2\t我们\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "1\t我\t我\tPRON\t_\t_\t3\tnsubj\t_\t_\n"
        "2\t们\t们\tPART\t_\t_\t1\tcase\t_\t_\n"
        "2.1\t去\t_\tVERB\t_\t_\t_\t_\t0:root\t_\n"
        "3\t走\t走\tVERB\t_\t_\t0\troot\t_\t_\n"
        "4\t了\t了\tAUX\t_\t_\t3\taux\t_\t_\n"
        "5\t。\t。\tPUNCT\t_\t_\t3\tpunct\t_\t_\n\n"
    )
    (s,) = parse_conllu(text)
    assert s.words == ["我", "们", "走", "了", "。"] and s.heads == [3, 1, 0, 3, 3]
    assert s.text == "我们走了。" and s.sent_id == "x1"
    assert s.punct_mask() == [False, False, False, False, True]
    assert is_punct("PUNCT") and not is_punct("NOUN")
    out = write_conllu([s, Sentence(words=["好"], heads=[0])])
    lines = out.split("\n")
    assert all(len(line.split("\t")) == 10 for line in lines if line and line[0] != "#")
    assert out.endswith("\n\n") and "# text = 好" in out
    back = parse_conllu(out)
    assert [b.words for b in back] == [s.words, ["好"]]
    assert [b.heads for b in back] == [s.heads, [0]]
    assert back[1].upos == ["_"] and back[0].deprels == s.deprels
    with pytest.raises(ValueError, match=":2:"):
        parse_conllu("# c\n1\t我\t_\n")


def test_ud_gsdsimp_real_data(tmp_path):
    test_file = _need(GSD) / "zh_gsdsimp-ud-test.conllu"
    sents = read_conllu(test_file)
    assert len(sents) > 0
    for s in sents:
        n = len(s.words)
        assert sum(h == 0 for h in s.heads) == 1
        assert all(0 <= h <= n and h != i for i, h in enumerate(s.heads, start=1))
        assert len(s.upos) == len(s.deprels) == n and s.text
    out = tmp_path / "rt.conllu"
    out.write_text(write_conllu(sents), encoding="utf-8")
    back = read_conllu(out)
    assert [b.words for b in back] == [s.words for s in sents]
    assert [b.heads for b in back] == [s.heads for s in sents]
    # right-chain baseline: UAS computed independently here must equal the scorer's
    gold = [s.heads for s in sents]
    pred = [right_chain(len(h)) for h in gold]
    res = score_dep(gold, pred, [s.punct_mask() for s in sents])
    hits = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    total = sum(len(g) for g in gold)
    assert 0.0 < res["uas"] < 1.0 and res["uas"] == pytest.approx(hits / total)
    assert res["uas_nopunct"] is not None and res["uuas"] >= res["uas"]
    spans = score_dep_spans([s.words for s in sents], gold, [s.words for s in sents], pred)
    assert spans["uas"] == pytest.approx(res["uas"]) and spans["word_f1"] == 1.0


# ---------------------------------------------------------------------------------------- summ
def test_summ_hand_example():
    # gold 我爱北京, pred 我爱上海: unigrams 2/4 both ways -> R1 0.5; bigrams 我爱|爱北|北京 vs
    # 我爱|爱上|上海 share 1 of 3 -> R2 1/3; LCS 我爱 = 2 -> RL 0.5. BLEU-4: p1 2/4, p2 1/3,
    # p3 0/2 -> method1 0.1/2, p4 0/1 -> 0.1/1, brevity penalty 1.
    res = score_summ(["我爱北京"], ["我爱上海"])
    assert res["rouge1"] == pytest.approx(0.5)
    assert res["rouge2"] == pytest.approx(1 / 3)
    assert res["rougeL"] == pytest.approx(0.5)
    assert res["bleu"] == pytest.approx((0.5 * (1 / 3) * 0.05 * 0.1) ** 0.25)
    assert res["n"] == 1
    # whitespace is dropped; an empty prediction scores 0 and the mean is over samples
    assert score_summ(["北 京 欢迎你"], ["北京欢迎 你"])["rougeL"] == 1.0
    two = score_summ(["我爱北京", "北京"], ["我爱上海", ""])
    assert two["rouge1"] == pytest.approx(0.25) and two["n"] == 2
    assert score_summ([""], [""]) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "bleu": 0.0,
                                      "n": 1}
    # ROUGE-L uses a subsequence: gold ABCD, pred ACBD -> LCS 3, P = R = 3/4
    assert score_summ(["甲乙丙丁"], ["甲丙乙丁"])["rougeL"] == pytest.approx(0.75)
    # the convention lowercases both sides: case never costs a match
    assert score_summ(["基于LSTM的方法"], ["基于lstm的方法"])["rougeL"] == 1.0


# ----------------------------------------------------------------------------------------- cls
def test_cls_hand_example():
    # gold 6 pos, 2 neg, 2 neu; pred: pos all right, neg 1/2 (other -> pos), neu 1/2 (-> pos).
    # accuracy 8/10. pos P 6/8 R 1 F 6/7; neg P 1 R 1/2 F 2/3; neu same.
    # macro F1 = (6/7 + 2/3 + 2/3)/3 = 46/63; balanced accuracy = (1 + 1/2 + 1/2)/3 = 2/3.
    gold = ["pos"] * 6 + ["neg"] * 2 + ["neu"] * 2
    pred = ["pos"] * 6 + ["pos", "neg"] + ["neu", "pos"]
    res = score_cls(gold, pred)
    assert res["accuracy"] == pytest.approx(0.8)
    assert res["macro_f1"] == pytest.approx(46 / 63)
    assert res["balanced_accuracy"] == pytest.approx(2 / 3)
    assert res["per_class"]["pos"] == pytest.approx(
        {"precision": 0.75, "recall": 1.0, "f1": 6 / 7, "support": 6})
    # a label only predicted counts in macro F1 (F1 0) but not in balanced accuracy
    odd = score_cls(["a", "a"], ["a", "x"])
    assert odd["macro_f1"] == pytest.approx(1 / 3) and odd["balanced_accuracy"] == 0.5
    with pytest.raises(ValueError):
        score_cls(["a"], [])


# ----------------------------------------------------------------------------------------- cli
@pytest.fixture
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zhtools")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    add_eval_parser(p.add_subparsers(dest="command"))
    return p


def _run(parser, argv: list, capsys) -> tuple[int, str, str]:
    args = parser.parse_args([str(a) for a in argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_cws(parser, tmp_path, capsys):
    gold = _write(tmp_path / "gold.utf8", "我  爱  北京  天安门\n他  来  了\n")
    pred = _write(tmp_path / "pred.utf8", "我 爱北京 天安 门\n他 来 了\n")
    words = _write(tmp_path / "words.utf8", "我\n爱\n北京\n他\n来\n了\n")
    code, out, _ = _run(parser, ["eval", "cws", "-q", "--gold", gold, "--pred", pred,
                                 "--words", words, "--json"], capsys)
    res = json.loads(out)
    assert code == 0 and res["f1"] == pytest.approx(4 / 7) and res["oov_recall"] == 0.0
    assert {"precision", "recall", "iv_recall"} <= res.keys()
    code, out, _ = _run(parser, ["eval", "cws", "--gold", gold, "--pred", pred], capsys)
    assert code == 0 and "f1" in out and "0.5714" in out
    # exit code 2: line counts, differing text, missing file, invalid UTF-8
    short = _write(tmp_path / "short.utf8", "我 爱北京 天安 门\n")
    bad = _write(tmp_path / "bad.utf8", "我 爱北京 天安 门\n他 去 了\n")
    latin = tmp_path / "latin.utf8"
    latin.write_bytes(b"\xff\xfe\xfa\n\n")
    for p in (short, bad, tmp_path / "missing.utf8", latin):
        code, out, err = _run(parser, ["eval", "cws", "--gold", gold, "--pred", p], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and "error" in err
    assert "line 2" in _run(parser, ["eval", "cws", "--gold", gold, "--pred", bad], capsys)[2]


def test_cli_cws_segmenters(parser, tmp_path, capsys, monkeypatch):
    pytest.importorskip("jieba")
    gold = _write(tmp_path / "gold.utf8", "我  爱  北京  天安门\n\n他  来  了\n")
    code, out, _ = _run(parser, ["eval", "cws", "--gold", gold, "--segmenter", "jieba", "--json"],
                        capsys)
    assert code == 0 and json.loads(out)["gold_words"] == 7
    import zhtools

    monkeypatch.setattr(zhtools, "segment", lambda text: list(text), raising=False)
    code, out, _ = _run(parser, ["eval", "cws", "--gold", gold, "--segmenter", "zhtools",
                                 "--json"], capsys)
    res = json.loads(out)  # one word per character: 10 predicted, 5 correct (我 爱 他 来 了)
    assert code == 0 and res["pred_words"] == 10 and res["correct"] == 5
    with pytest.raises(SystemExit):  # --pred and --segmenter are exclusive
        parser.parse_args(["eval", "cws", "--gold", "g", "--pred", "p", "--segmenter", "jieba"])


def test_cli_dep(parser, tmp_path, capsys):
    gold = Sentence(words=["我", "爱", "北京", "。"], heads=[2, 0, 2, 3],
                    upos=["PRON", "VERB", "PROPN", "PUNCT"])
    pred = Sentence(words=gold.words, heads=[2, 0, 4, 2])
    g = _write(tmp_path / "g.conllu", write_conllu([gold]))
    p = _write(tmp_path / "p.conllu", write_conllu([pred]))
    code, out, _ = _run(parser, ["eval", "dep", "--gold", g, "--pred", p, "--json"], capsys)
    res = json.loads(out)
    assert code == 0 and res["uas"] == 0.5 and res["uuas"] == 0.75
    assert res["uas_nopunct"] == pytest.approx(2 / 3)
    code, out, _ = _run(parser, ["eval", "dep", "--gold", g, "--baseline", "right-chain",
                                 "--json"], capsys)
    assert code == 0 and json.loads(out)["uas"] == 0.25  # [2,3,4,0]: only word 1 right
    code, out, _ = _run(parser, ["eval", "dep", "--gold", g, "--baseline", "random"], capsys)
    assert code == 0 and "uuas" in out
    resegmented = Sentence(words=["我", "爱北京", "。"], heads=[2, 0, 2])
    p2 = _write(tmp_path / "p2.conllu", write_conllu([resegmented]))
    code, out, _ = _run(parser, ["eval", "dep", "--gold", g, "--pred", p2, "--json"], capsys)
    assert code == 0 and json.loads(out)["word_f1"] == pytest.approx(4 / 7)
    two = _write(tmp_path / "two.conllu", write_conllu([pred, pred]))
    broken = _write(tmp_path / "broken.conllu", "1\t我\n")
    for bad in (two, broken, tmp_path / "none.conllu"):
        code, _, err = _run(parser, ["eval", "dep", "--gold", g, "--pred", bad], capsys)
        assert code == 2 and err.count("\n") == 1


def test_cli_summ(parser, tmp_path, capsys):
    gold = _write(tmp_path / "gold.tsv", "一篇长文\t我爱北京\n另一篇\t北京\n")
    pred = _write(tmp_path / "pred.txt", "我爱上海\n\n")
    code, out, _ = _run(parser, ["eval", "summ", "--gold", gold, "--pred", pred, "--json"],
                        capsys)
    res = json.loads(out)
    assert code == 0 and res["rouge1"] == pytest.approx(0.25) and res["n"] == 2
    assert {"rouge2", "rougeL", "bleu"} <= res.keys()
    first = _write(tmp_path / "first.tsv", "我爱北京\t一篇长文\n北京\t另一篇\n")
    code, out, _ = _run(parser, ["eval", "summ", "--gold", first, "--column", "0", "--pred",
                                 pred, "--json"], capsys)
    assert code == 0 and json.loads(out)["rouge1"] == pytest.approx(0.25)
    one = _write(tmp_path / "one.txt", "我爱上海\n")
    code, out, err = _run(parser, ["eval", "summ", "--gold", gold, "--pred", one], capsys)
    assert code == 2 and out == "" and "2 lines" in err


def test_cli_cls(parser, tmp_path, capsys):
    gold = _write(tmp_path / "gold.tsv",
                  "label\ttext_a\n" + "".join(f"{g}\t句子{i}\n" for i, g in enumerate("pppppnn")))
    pred = _write(tmp_path / "pred.txt", "p\np\np\np\np\np\nn\n")
    code, out, _ = _run(parser, ["eval", "cls", "--gold", gold, "--pred", pred, "--json"], capsys)
    res = json.loads(out)
    # accuracy 6/7; balanced accuracy (1 + 1/2)/2; F1 p = 2*(5/6)/(11/6) = 10/11, n = 2/3
    assert code == 0 and res["accuracy"] == pytest.approx(6 / 7)
    assert res["balanced_accuracy"] == pytest.approx(0.75)
    assert res["macro_f1"] == pytest.approx((10 / 11 + 2 / 3) / 2)
    code, out, _ = _run(parser, ["eval", "cls", "--gold", gold, "--pred", pred], capsys)
    assert code == 0 and "balanced_accuracy" in out
    short = _write(tmp_path / "short.txt", "p\n")
    code, _, err = _run(parser, ["eval", "cls", "--gold", gold, "--pred", short], capsys)
    assert code == 2 and "error" in err


def test_cli_eval_without_task(parser, capsys):
    code, _, err = _run(parser, ["eval"], capsys)
    assert code == 2 and "cws" in err
