"""spaCy integration (entry points ``zhtools.Tokenizer.v1`` and ``zhtools_parser``) on a tiny
random BERT: lossless docs, the same words and trees as the zhtools API, batching, save/load."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

spacy = pytest.importorskip("spacy")

from zhtools.parse import Parser  # noqa: E402
from zhtools.segment import Segmenter  # noqa: E402
from zhtools.text.tokenizer import split_sentences  # noqa: E402

TEXTS = [
    "北京是中国的首都。今天天气很好，我们去公园散步吧！",
    "  New York 是一座城市。\n\n第二段 有 空格 ",
    "😀中文😀",
    "",
    " \n\t ",
    "他说：“好。”然后走了。" * 30,  # several sentences, longer than the tiny model's window
]


@pytest.fixture(scope="module")
def nlp(model_dir):
    cfg = {"nlp": {"tokenizer": {"@tokenizers": "zhtools.Tokenizer.v1", "model": model_dir}}}
    nlp = spacy.blank("zh", config=cfg)
    nlp.add_pipe("zhtools_parser", config={"model": model_dir})
    return nlp


def _heads(doc) -> list[int]:
    return [t.head.i for t in doc]


def test_tokenizer_is_lossless_and_matches_segmenter(nlp, model_dir) -> None:
    seg = Segmenter(model_dir)
    for text in TEXTS:
        doc = nlp.make_doc(text)
        assert doc.text == text
        words = [w for w in seg.segment(text) if not w.isspace()]
        assert [t.text for t in doc if not t.is_space] == words
    docs = list(nlp.tokenizer.pipe(TEXTS, batch_size=2))
    assert [[t.text for t in d] for d in docs] == [[t.text for t in nlp.make_doc(x)] for x in TEXTS]


def test_parser_sets_one_tree_per_sentence(nlp, model_dir) -> None:
    ref = Parser(model_dir)
    for text in TEXTS:
        doc = nlp(text)
        assert doc.text == text
        if not len(doc):
            continue
        sents = list(doc.sents)
        assert "".join(s.text_with_ws for s in sents) == text
        for s in sents:  # exactly one ROOT per sentence, every head inside it, no cycles
            assert sum(t.dep_ == "ROOT" for t in s) == 1
            assert all(s.start <= t.head.i < s.end for t in s)
        if text.strip():
            want = len([1 for a, b in split_sentences(text) if text[a:b].strip()])
            assert len(sents) == want
    # one single-sentence doc: the same heads as the zhtools API on the doc's words
    doc = nlp(TEXTS[0].split("。")[0] + "。")
    words = [t.text for t in doc]
    res = ref.parse(words=words)
    assert [t.head.i + 1 if t.dep_ != "ROOT" else 0 for t in doc] == res.heads


def test_pipe_pickle_and_disk_roundtrip(nlp, tmp_path) -> None:
    piped = list(nlp.pipe(TEXTS, batch_size=3))
    single = [nlp(x) for x in TEXTS]
    assert [_heads(d) for d in piped] == [_heads(d) for d in single]
    clone = pickle.loads(pickle.dumps(nlp))  # what nlp.pipe(n_process=K) ships to workers
    assert [_heads(clone(x)) for x in TEXTS] == [_heads(d) for d in single]
    nlp.to_disk(tmp_path / "pipeline")
    back = spacy.load(tmp_path / "pipeline")
    assert back.pipe_names == ["zhtools_parser"]
    for text, want in zip(TEXTS, single):
        doc = back(text)
        assert [t.text for t in doc] == [t.text for t in want]
        assert _heads(doc) == _heads(want)


def test_bad_input_is_a_clear_error(nlp) -> None:
    with pytest.raises(TypeError):
        nlp.tokenizer(b"\xe4\xb8\xad")


def test_parser_after_spacys_own_tokenizer(model_dir) -> None:
    nlp = spacy.blank("zh")  # spaCy's character segmenter
    nlp.add_pipe("zhtools_parser", config={"model": model_dir})
    doc = nlp("北京是中国的首都。我们去 公园！")
    assert [t.text for t in doc if not t.is_space] == list("北京是中国的首都。我们去公园！")
    assert [s.text for s in doc.sents] == ["北京是中国的首都。", "我们去 公园！"]
    assert all(sum(t.dep_ == "ROOT" for t in s) == 1 for s in doc.sents)


def test_parser_conventions_setting(nlp, model_dir, tmp_path) -> None:
    """``conventions`` in the component config reaches the zhtools parser (default ``"ud"``) and
    survives save/load."""
    assert nlp.get_pipe("zhtools_parser").settings["conventions"] == "ud"
    plain = spacy.blank("zh", config={"nlp": {"tokenizer": {"@tokenizers": "zhtools.Tokenizer.v1",
                                                             "model": model_dir}}})
    plain.add_pipe("zhtools_parser", config={"model": model_dir, "conventions": "none"})
    words = ["我们", "买", "了", "书", "。"]
    for pipeline, conv in ((nlp, "ud"), (plain, "none")):
        doc = pipeline.get_pipe("zhtools_parser")(spacy.tokens.Doc(pipeline.vocab, words=words))
        want = Parser(model_dir, conventions=conv).parse(words=words).heads
        assert [t.head.i + 1 if t.dep_ != "ROOT" else 0 for t in doc] == want
    plain.to_disk(tmp_path / "plain")
    assert spacy.load(tmp_path / "plain").get_pipe("zhtools_parser").settings["conventions"] == "none"


def test_parser_classes_setting(model_dir, tmp_path) -> None:
    """``classes`` in the component config reaches the zhtools parser (a word-class model file
    that prefers heads on the right, on an encoder with its masked-LM head) and survives
    save/load."""
    from helpers import tiny_mlm_folder

    from zhtools.parse.classes import WordClasses

    mlm = str(tiny_mlm_folder(tmp_path / "mlm"))

    path = tmp_path / "right.safetensors"
    WordClasses(np.array([5, 6]), np.zeros(4, np.float32), np.eye(4, 2, dtype=np.float32),
                np.zeros((1, 2), np.float32), np.log(np.array([[[0.001, 0.999]]], np.float32)),
                weight=50.0).save(path)
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"@tokenizers": "zhtools.Tokenizer.v1",
                                                           "model": model_dir}}})
    nlp.add_pipe("zhtools_parser", config={"model": mlm, "conventions": "none", "classes": str(path)})
    words = ["我们", "今天", "在", "北京", "买", "了", "新", "书"]
    doc = nlp.get_pipe("zhtools_parser")(spacy.tokens.Doc(nlp.vocab, words=words))
    heads = [t.head.i + 1 if t.dep_ != "ROOT" else 0 for t in doc]
    assert heads == Parser(mlm, conventions="none", classes=str(path)).parse(words=words).heads
    root = heads.index(0)
    assert all(h - 1 > m for m, h in enumerate(heads[:root])), heads
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").get_pipe("zhtools_parser").settings["classes"] == str(path)
