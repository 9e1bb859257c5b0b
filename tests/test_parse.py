"""Parser API and ``zhtools parse`` CLI on a tiny random BERT (trees are valid, not good)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zhtools
from zhtools.eval.conllu import parse_conllu
from zhtools.parse import Parser, ParseResult
from zhtools.parse.conventions import apply_conventions, convention_arcs, fixed_dependents

CALIBRATION = ["北京是中国的首都。", "今天天气很好，我们去公园散步吧。"] * 3
SENTENCES = ["北京是中国的首都。", "好", "。！", "Hello world, 2024年的GDP增长了5.2%。"]
LONG_WORDS = [("今天天气很好我们去公园散步吧" * 25)[k : k + 6] for k in range(0, 300, 6)]


@pytest.fixture(scope="module")
def parser(model_dir) -> Parser:
    p = Parser(model_dir)
    p.segmenter.calibrate(CALIBRATION)
    return p


def _check_tree(heads: list[int], projective: bool) -> None:
    n = len(heads)
    assert all(0 <= h <= n for h in heads)
    assert heads.count(0) == 1
    for m in range(1, n + 1):  # every word reaches ROOT without a cycle
        seen, k = set(), m
        while k:
            assert k not in seen
            seen.add(k)
            k = heads[k - 1]
    if projective:
        arcs = [(min(h, m), max(h, m)) for m, h in enumerate(heads, 1)]
        for a, b in arcs:
            for c, d in arcs:
                assert not (a < c < b < d), f"crossing arcs in {heads}"


def test_dependency_trees_are_valid(parser) -> None:
    mst = Parser(parser.model, decoder="mst", segmenter=parser.segmenter)
    for text in SENTENCES:
        r = parser.parse(text)
        assert isinstance(r, ParseResult) and r.kind == "dependency"
        assert "".join(r.words) == text.replace(" ", "")
        assert r.matrix.shape == (len(r.words),) * 2
        _check_tree(r.heads, projective=True)
        _check_tree(mst.parse(text).heads, projective=False)
    assert parser.parse("好").heads == [0]
    long = parser.parse(words=LONG_WORDS)  # 300 chars: windowed by the engine
    assert len("".join(long.words)) == 300 and long.uncovered > 0
    _check_tree(long.heads, projective=True)


def test_empty_and_whitespace_input(parser) -> None:
    for text in ["", "   ", "\t\n"]:
        r = parser.parse(text)
        assert r.words == [] and r.heads == [] and r.text == text
        assert r.to_conllu() == "" and r.pretty() == "" and r.to_tree().leaves() == []
        json.dumps(r.to_dict())


def test_parse_many_equals_loop(parser) -> None:
    texts = ["北京是中国的首都。", "", "今天天气很好", "好", "我们 去 公园"]
    words = [None, None, None, None, ["我们", " ", "去", "公园"]]
    many = parser.parse_many(texts, words)
    single = [parser.parse(t, w) for t, w in zip(texts, words)]
    for a, b in zip(many, single):
        assert a.words == b.words and a.heads == b.heads and a.text == b.text
        assert np.allclose(a.matrix, b.matrix, atol=1e-5)
    assert many[4].words == ["我们", "去", "公园"]  # whitespace word dropped


def test_redecode_equals_fresh_parse(parser, model_dir) -> None:
    words = ["北京", "是", "中国", "的", "首都", "。"]
    base = parser.parse(words=words)
    for kw in ({"decoder": "mst"}, {"kind": "constituency"}):
        other = Parser(model_dir, segmenter=parser.segmenter, **kw)
        fresh, again = other.parse(words=words), other.redecode(base)
        assert again.words == fresh.words and again.heads == fresh.heads
        assert str(again.tree) == str(fresh.tree)


def test_given_words_respected(parser) -> None:
    words = ["北京", "是", "中国", "的", "首都", "。"]
    r = parser.parse(words=words)
    assert r.words == words and r.text == "北京是中国的首都。"
    assert parser.parse("北京 是中国的首都。", words).words == words
    with pytest.raises(ValueError):
        parser.parse("上海是中国的首都。", words)


def test_conllu_roundtrip_and_views(parser) -> None:
    for text in SENTENCES:
        r = parser.parse(text)
        [sent] = parse_conllu(r.to_conllu(sent_id="7"))
        assert sent.words == r.words and sent.heads == r.heads and sent.sent_id == "7"
        assert r.to_tree().leaves() == r.words  # projective dependency tree
        assert len(r.pretty().splitlines()) == len(r.words) + 1
        assert json.loads(json.dumps(r.to_dict()))["heads"] == r.heads


def test_constituency(parser) -> None:
    c = Parser(parser.model, kind="constituency", segmenter=parser.segmenter)
    for text in [*SENTENCES, "今天天气很好，我们去公园散步吧。"]:
        r = c.parse(text)
        assert r.heads is None and r.to_tree().leaves() == r.words
        d = json.loads(json.dumps(r.to_dict()))
        assert all(0 <= s < e <= len(r.words) for s, e in d["spans"])
        with pytest.raises(ValueError, match="dependency"):
            r.to_conllu()
    assert c.parse(words=LONG_WORDS).to_tree().leaves() == LONG_WORDS


def test_pickle_and_module_helpers(parser, model_dir) -> None:
    words = ["今天", "天气", "很", "好"]
    p2 = pickle.loads(pickle.dumps(parser))
    assert p2._engine is None
    assert p2.parse(words=words).heads == parser.parse(words=words).heads
    zhtools.get_segmenter(model_dir).calibrate(CALIBRATION)
    r = zhtools.parse("北京是中国的首都。", model=model_dir)
    assert r.heads == parser.parse("北京是中国的首都。").heads
    assert [x.words for x in zhtools.parse_many(["好", ""], model=model_dir)] == [["好"], []]


def _cli(args, inp: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "zhtools", "parse", *args], input=inp,
                          capture_output=True, timeout=300)


def test_cli(tmp_path: Path, model_dir: str) -> None:
    src = tmp_path / "in.txt"
    src.write_text("北京 是 中国 的 首都 。\n\n今天 天气 很 好\n好\n", encoding="utf-8")
    out = tmp_path / "out.conllu"
    r = _cli([str(src), "-o", str(out), "--words-from-input", "--format", "conllu",
              "--model", model_dir, "-q"])
    assert r.returncode == 0, r.stderr
    sents = parse_conllu(out.read_text(encoding="utf-8"))
    assert [s.words for s in sents] == [["北京", "是", "中国", "的", "首都", "。"],
                                        ["今天", "天气", "很", "好"], ["好"]]
    assert [s.sent_id for s in sents] == ["1", "3", "4"]
    for s in sents:
        _check_tree(s.heads, projective=True)

    r = _cli(["--words-from-input", "--format", "json", "--kind", "constituency",
              "--model", model_dir, "-q"], src.read_bytes())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 4
    objs = [json.loads(x) for x in lines]
    assert objs[1]["words"] == [] and objs[3]["brackets"] == "(X 好)"

    bad = tmp_path / "bad.txt"
    bad.write_bytes("好的\n".encode() + b"\xff\xfe\n")
    out2 = tmp_path / "out2.txt"
    r = _cli([str(bad), "-o", str(out2), "--words-from-input", "--model", model_dir, "-q"])
    assert r.returncode == 2 and b"line 2" in r.stderr
    assert not out2.exists()
    r = _cli(["--kind", "constituency", "--format", "conllu", "--model", model_dir], b"")
    assert r.returncode == 2 and b"--kind dependency" in r.stderr

    # --layer: the CLI parses like the API reading that layer; a bad value is a usage error
    words = ["北京", "是", "中国", "的", "首都", "。"]
    for layer, arg in ((-1, "last"), (1, "1"), ("middle", "middle"), ("auto", "auto")):
        r = _cli(["--words-from-input", "--format", "json", "--layer", arg, "--model", model_dir, "-q"],
                 " ".join(words).encode())
        assert r.returncode == 0, r.stderr
        want = Parser(model_dir, layer=layer).parse(words=words).heads
        assert json.loads(r.stdout)["heads"] == want
    r = _cli(["--layer", "top", "--model", model_dir], b"")
    assert r.returncode == 2 and b"--layer" in r.stderr
    # --root: the CLI parses like the API with that root rule; a bad value is a usage error
    for rule in ("uniform", "in-impact"):
        r = _cli(["--words-from-input", "--format", "json", "--root", rule, "--model", model_dir, "-q"],
                 " ".join(words).encode())
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["heads"] == Parser(model_dir, root_rule=rule).parse(words=words).heads
    r = _cli(["--words-from-input", "--format", "json", "--conventions", "none", "--model", model_dir, "-q"],
             "我们 买 了 书 。\n".encode())
    assert r.returncode == 0, r.stderr
    plain = Parser(model_dir, conventions="none").parse(words=["我们", "买", "了", "书", "。"]).heads
    assert json.loads(r.stdout)["heads"] == plain
    r = _cli(["--conventions", "ptb", "--model", model_dir], b"")
    assert r.returncode == 2 and b"--conventions" in r.stderr
    r = _cli(["--root", "gold", "--model", model_dir], b"")
    assert r.returncode == 2 and b"--root" in r.stderr


def _run(args):
    return subprocess.run([sys.executable, "-m", "zhtools", *args], capture_output=True,
                          text=True, timeout=300)


def test_eval_dep_and_const_run_zhtools(tmp_path, model_dir) -> None:
    import json as _json

    gold = tmp_path / "g.conllu"
    gold.write_text(
        "# text = 北京是首都。\n"
        "1\t北京\t_\tPROPN\t_\t_\t3\tnsubj\t_\t_\n2\t是\t_\tAUX\t_\t_\t3\tcop\t_\t_\n"
        "3\t首都\t_\tNOUN\t_\t_\t0\troot\t_\t_\n4\t。\t_\tPUNCT\t_\t_\t3\tpunct\t_\t_\n\n"
        "# text = 我爱你\n"
        "1\t我\t_\tPRON\t_\t_\t2\tnsubj\t_\t_\n2\t爱\t_\tVERB\t_\t_\t0\troot\t_\t_\n"
        "3\t你\t_\tPRON\t_\t_\t2\tobj\t_\t_\n\n", encoding="utf-8")
    for extra in ([], ["--decoder", "mst"], ["--baseline", "right-chain"]):
        r = _run(["eval", "dep", "--gold", str(gold), "--model", model_dir, "--json", *extra])
        assert r.returncode == 0, r.stderr
        res = _json.loads(r.stdout)
        assert 0 <= res["uas"] <= 1 and res["words"] == 7 and res["uas_nopunct"] is not None
    r = _run(["eval", "dep", "--gold", str(gold), "--baseline", "left-chain", "--json"])
    assert _json.loads(r.stdout)["uas"] == pytest.approx(2 / 7)
    from zhtools.eval.dep import score_dep

    sents = parse_conllu(gold.read_text(encoding="utf-8"))
    for conv in ("ud", "none"):  # --conventions scores what the API parses
        r = _run(["eval", "dep", "--gold", str(gold), "--model", model_dir, "--json", "--conventions", conv])
        assert r.returncode == 0, r.stderr
        res = Parser(model_dir, conventions=conv).parse_many([None] * 2, [s.words for s in sents])
        want = score_dep([s.heads for s in sents], [x.heads for x in res], [s.punct_mask() for s in sents])
        assert _json.loads(r.stdout)["uas"] == pytest.approx(want["uas"])
    for extra in ([], ["--baseline", "right-branching"], ["--keep-punct"]):
        r = _run(["eval", "const", "--gold", str(gold), "--model", model_dir, "--json", *extra])
        assert r.returncode == 0, r.stderr
        assert 0 <= _json.loads(r.stdout)["f1"] <= 1
    r = _run(["eval", "dep", "--gold", str(gold), "--model", str(tmp_path / "missing"), "--json"])
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_verb_root_scores_skip_punctuation() -> None:
    from zhtools.parse.verbs import is_punctuation, verb_root_scores

    assert is_punctuation("。") and is_punctuation("《》") and not is_punctuation("北京") and not is_punctuation("")
    r = verb_root_scores(["北京", "。", "好"], np.array([0.1, 5.0, 0.2]))
    assert list(r) == [-1e9, -1e9, 0.0]  # the punctuation mark scores highest but cannot be root
    r = verb_root_scores(["。", "！"], np.array([0.0, 1.0]))
    assert list(r) == [-1e9, 0.0]  # punctuation only: any word may be root


def test_verb_probe_root_with_an_mlm_head(tmp_path: Path) -> None:
    """An encoder saved with its masked-LM head gets the verb-probe root rule: the root is the
    most verb-like non-punctuation word by ``ParseResult.verb``; long sentences (cropped copies),
    one-word and punctuation-only input parse without error; redecoding reuses the scores."""
    from helpers import tiny_mlm_folder

    folder = tiny_mlm_folder(tmp_path / "mlm")
    p = Parser(str(folder))
    assert p._uses_verbs()
    given = [["北京", "是", "中国", "的", "首都", "。"], LONG_WORDS, ["好"], ["。", "！"]]
    res = p.parse_many([None] * len(given), given)
    for r in res:
        _check_tree(r.heads, projective=True)
    for r in (res[0], res[1]):
        assert r.verb is not None and r.verb.shape == (len(r.words),) and np.isfinite(r.verb).all()
        fixed = fixed_dependents(r.words)  # 的 gets its head from the conventions
        content = [k for k, w in enumerate(r.words) if w not in "。！" and not fixed[k]]
        assert r.heads.index(0) == max(content, key=lambda k: r.verb[k])
    assert res[2].heads == [0]
    assert p.redecode(res[0]).heads == res[0].heads
    old = Parser(str(folder), root_rule="out-impact")
    assert not old._uses_verbs() and old.redecode(res[0]).verb is None


def test_verb_probe_falls_back_without_an_mlm_head(parser, model_dir) -> None:
    """A bare encoder (no masked-LM head in its checkpoint) parses with the out-impact root."""
    words = ["北京", "是", "中国", "的", "首都", "。"]
    assert parser.root_rule == "verb-probe" and not parser._uses_verbs()
    r = parser.parse(words=words)
    assert r.verb is None
    assert r.heads == Parser(model_dir, root_rule="out-impact", segmenter=parser.segmenter).parse(words=words).heads


def test_conventions_fix_particles_brackets_localizers_and_final_punctuation() -> None:
    """Arc-score indices (1-based words, 0 = ROOT): particles, localizers and closing brackets
    take the preceding word, opening brackets the following one, the final 。 the root; words
    that merely contain a particle, localizers after punctuation and 2-cycles are left alone."""
    words = ["我们", "买", "了", "一", "本", "很好", "的", "书", "。"]
    assert convention_arcs(words, root=1) == [(2, 3), (6, 7), (2, 9)]
    assert fixed_dependents(words) == [False, False, True, False, False, False, True, False, False]
    words = ["他", "在", "桌子", "上", "读", "《", "红楼梦", "》", "。"]
    assert convention_arcs(words, root=4) == [(3, 4), (7, 6), (7, 8), (5, 9)]
    trad = ["他", "讀", "過", "「", "書", "」", "以後", "，", "後", "來", "走", "著", "！"]
    assert convention_arcs(trad, root=10) == [(2, 3), (5, 4), (5, 6), (11, 12), (11, 13)]
    assert convention_arcs(["上海", "的确", "很", "大"], root=3) == []  # whole words only
    assert convention_arcs(["，", "上", "面"], root=2) == []  # localizer after punctuation
    assert convention_arcs(["（", "）"], root=0) == [(2, 1)]  # no 2-cycle
    assert convention_arcs(["好", "。"], root=1) == []  # the root itself is final: nothing to fix
    assert convention_arcs([], root=0) == []
    assert convention_arcs(["书 ", "的 ", "。 "], root=0) == [(1, 2), (1, 3)]  # trailing spaces


def test_conventions_keep_every_fixed_arc_in_a_valid_tree() -> None:
    """On random scores over random word sequences (particles, brackets, punctuation mixed in),
    Eisner and MST with the conventions return single-rooted trees (projective for Eisner) that
    contain every fixed arc, rooted at a word the conventions do not attach."""
    from zhtools.parse.decoders import eisner, mst

    rng = np.random.default_rng(0)
    vocab = ["北京", "是", "的", "了", "上", "《", "》", "“", "”", "，", "。", "书", "很", "好", "過"]
    for _ in range(200):
        n = int(rng.integers(1, 9))
        words = [vocab[i] for i in rng.integers(0, len(vocab), n)]
        fixed = fixed_dependents(words)
        root = int(rng.choice([k for k in range(n) if not fixed[k]]))
        scores = rng.normal(size=(n + 1, n + 1))
        scores[0, 1:] = -1e9
        scores[0, root + 1] = 0.0
        S = apply_conventions(scores, words, root)
        for decode, projective in ((eisner, True), (mst, False)):
            heads = [int(h) for h in decode(S)]
            _check_tree(heads, projective=projective)
            assert heads.index(0) == root
            for h, m in convention_arcs(words, root):
                assert heads[m - 1] == h, (words, heads)


def test_parser_conventions_option(parser) -> None:
    """``conventions="ud"`` (default) attaches 的 and 了 to the preceding word and the final 。
    to the root on the same impacts that ``"none"`` decodes alone; bad values are refused."""
    words = ["我们", "买", "了", "一", "本", "很好", "的", "书", "。"]
    assert parser.conventions == "ud"
    r = parser.parse(words=words)
    _check_tree(r.heads, projective=True)
    assert r.heads[2] == 2 and r.heads[6] == 6 and r.heads[8] == r.heads.index(0) + 1
    plain = Parser(parser.model, conventions="none", segmenter=parser.segmenter).redecode(r)
    _check_tree(plain.heads, projective=True)
    assert plain.heads != r.heads
    with pytest.raises(ValueError, match="conventions"):
        Parser(parser.model, conventions="ptb", segmenter=parser.segmenter)


def test_word_classes_counts_arcs_and_safetensors_roundtrip(tmp_path: Path) -> None:
    """Attachment counts give add-one smoothed log P(head class, side | dependent class); the
    arc bonus reads them per word pair; classes are nearest centroids; save/load is exact."""
    from zhtools.parse.classes import WordClasses, count_attachments

    # words of classes [0, 1, 1]; word 1 heads words 0 (head on the right) and 2 (on the left)
    attach = count_attachments([np.array([0, 1, 1])], [[2, 0, 2]], 2)
    assert np.allclose(np.exp(attach).sum(axis=(1, 2)), 1.0)
    assert np.isclose(attach[0, 1, 1], np.log(2 / 5)) and np.isclose(attach[0, 0, 0], np.log(1 / 5))
    assert np.isclose(attach[1, 1, 0], np.log(2 / 5)) and np.isclose(attach[1, 0, 1], np.log(1 / 5))
    m = WordClasses(np.array([5, 6, 7]), np.zeros(6, np.float32), np.asfortranarray(np.eye(6, 2, dtype=np.float32)),
                    np.array([[0, 0], [1, 1]], np.float32), attach, weight=0.5)
    feats = np.array([[0.1, 0, 9, 9, 9, 9], [0.9, 1.2, 0, 0, 0, 0], [0.4, 0.2, 0, 0, 0, 0]])
    assert list(m.classes(feats)) == [0, 1, 0]
    A = m.arc_scores(np.array([0, 1, 1]))
    assert A[0, 1] == np.float32(0.5) * attach[0, 1, 1] and A[2, 1] == np.float32(0.5) * attach[1, 1, 0]
    assert A[1, 0] == np.float32(0.5) * attach[1, 0, 0] and (np.diag(A) == 0).all()
    m.save(tmp_path / "c.safetensors")
    back = WordClasses.load(tmp_path / "c.safetensors")
    for f in ("keep", "mean", "basis", "centroids", "attach"):  # column-major arrays too
        assert np.array_equal(getattr(back, f), getattr(m, f))
    assert list(back.classes(feats)) == [0, 1, 0]
    assert back.weight == 0.5


def test_word_classes_fit_load_and_steer_the_parse(tmp_path: Path) -> None:
    """``fit_classes`` on raw text gives a normalised model over the requested classes; saved in
    the model folder it is picked up by default (``classes="auto"``) and skipped with
    ``"none"``; a model that strongly prefers heads on the right makes every word before the
    root take a head to its right; a missing path is an error."""
    from helpers import tiny_mlm_folder

    from zhtools.parse.classes import FILENAME, WordClasses

    folder = tiny_mlm_folder(tmp_path / "mlm")
    texts = ["北京是中国的首都。", "今天天气很好，我们去公园散步吧。", "我们在北京工作。", "中国的天气很好。"] * 2
    fitted = Parser(str(folder), classes="none").fit_classes(texts, k=3, chars=20, rounds=2)
    assert fitted.centroids.shape[0] == 3 and fitted.attach.shape == (3, 3, 2)
    assert np.allclose(np.exp(fitted.attach).sum(axis=(1, 2)), 1.0)
    assert len(fitted.keep) <= 20 and fitted.mean.shape == (2 * len(fitted.keep),)
    assert not Parser(str(folder)).word_classes  # nothing saved yet
    right = WordClasses(fitted.keep, fitted.mean, fitted.basis, fitted.centroids[:1],
                        np.log(np.array([[[0.001, 0.999]]], np.float32)), weight=50.0)
    right.save(folder / FILENAME)
    words = ["我们", "今天", "在", "北京", "的", "公园", "散步", "和", "工作", "。"]
    p = Parser(str(folder), conventions="none")
    assert p.word_classes is not None and p.classes == "auto"
    r = p.parse(words=words)
    _check_tree(r.heads, projective=True)
    assert r.classes is not None and list(r.classes) == [0] * len(words)
    root = r.heads.index(0)
    assert all(h - 1 > m for m, h in enumerate(r.heads[:root])), r.heads
    plain = Parser(str(folder), conventions="none", classes="none")
    assert plain.word_classes is None and plain.parse(words=words).classes is None
    by_path = Parser(str(folder), conventions="none", classes=str(folder / FILENAME))
    assert by_path.parse(words=words).heads == r.heads
    assert p.redecode(plain.parse(words=words)).heads == r.heads  # classes computed on redecode
    with pytest.raises(FileNotFoundError):
        Parser(str(folder), classes=str(tmp_path / "missing.safetensors"))


def test_word_classes_need_a_masked_lm_head(model_dir, tmp_path: Path) -> None:
    """The class features come from the MLM head: a bare encoder cannot fit or use a class model
    (clear errors), and ``classes="auto"`` on it finds none and parses as before."""
    from zhtools.parse.classes import WordClasses

    path = tmp_path / "c.safetensors"
    WordClasses(np.array([5, 6]), np.zeros(4, np.float32), np.eye(4, 2, dtype=np.float32),
                np.zeros((1, 2), np.float32), np.zeros((1, 1, 2), np.float32)).save(path)
    words = ["北京", "是", "中国", "的", "首都", "。"]
    with pytest.raises(ValueError, match="masked-LM head"):
        Parser(model_dir, classes=str(path)).parse(words=words)
    with pytest.raises(ValueError, match="masked-LM head"):
        Parser(model_dir, classes="none").fit_classes(["北京是中国的首都。"] * 4, k=2)
    auto = Parser(model_dir)
    assert auto.word_classes is None and auto.parse(words=words).classes is None


def test_word_classes_cli(tmp_path: Path) -> None:
    """``python -m zhtools.parse.classes`` writes the model into the folder; no sentences -> 1."""
    from helpers import tiny_mlm_folder

    from zhtools.parse.classes import FILENAME, WordClasses

    folder = tiny_mlm_folder(tmp_path / "mlm")
    corpus = tmp_path / "raw.txt"
    corpus.write_bytes(("北京是中国的首都。今天天气很好，我们去公园散步吧。\n我们在北京工作。\n" * 3).encode() + b"\xff\n")
    cmd = [sys.executable, "-m", "zhtools.parse.classes", str(corpus), "-o", str(folder), "--model", str(folder),
           "--classes", "2", "--chars", "10", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert WordClasses.load(folder / FILENAME).centroids.shape[0] == 2
    words = ["我们", "在", "北京", "买", "了", "书", "。"]
    for choice in ("auto", "none", str(folder / FILENAME)):  # zhtools parse --classes = the API
        r = _cli(["--words-from-input", "--format", "json", "--model", str(folder), "--classes", choice, "-q"],
                 " ".join(words).encode())
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["heads"] == Parser(str(folder), classes=choice).parse(words=words).heads
    for sub in (["parse"], ["eval", "dep", "--gold", str(corpus)]):  # a missing file is a usage error
        r = _run([*sub, "--model", str(folder), "--classes", str(tmp_path / "nope.safetensors")])
        assert r.returncode == 2 and "--classes" in r.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("短\n", encoding="utf-8")
    done = subprocess.run(cmd[:3] + [str(empty)] + cmd[4:], capture_output=True, text=True)
    assert done.returncode == 1 and "no sentences" in done.stderr
