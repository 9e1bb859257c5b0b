"""Self-trained fast tagger: learns boundaries from (pseudo-)labelled sentences, lossless."""

from __future__ import annotations

import json
import random
from pathlib import Path

from helpers import tiny_bert_folder, tiny_tokenizer
from hypothesis import given, settings
from hypothesis import strategies as st

from zhtools.segment.tagger import (
    Tagger,
    TaggerConfig,
    sample_sentences,
    train_tagger,
    word_start_labels,
)

WORDS = ["中国", "北京", "今天", "我们", "公园", "时候", "他", "的", "是", "有", "说"]


def _tiny_base(tmp: Path) -> Path:
    return tiny_bert_folder(tmp / "base")


def test_labels_mark_word_starts() -> None:
    tok = tiny_tokenizer()
    ids, lab = word_start_labels(tok, "北京是中国", ["北京", "是", "中国"])
    assert len(ids) == 5 and lab == [1, 0, 1, 1, 0]


def test_tagger_learns_toy_segmentation(tmp_path: Path) -> None:
    rng = random.Random(0)
    out = tmp_path / "tagger"
    out.mkdir()
    rows = []
    for _ in range(300):
        ws = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
        rows.append(json.dumps({"text": "".join(ws), "words": ws}, ensure_ascii=False))
    (out / "pseudo.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = TaggerConfig(corpus=[], out=str(out), base=str(_tiny_base(tmp_path)), layers=None,
                       sentences=300, epochs=8, lr=3e-3, batch_tokens=512, progress=False)
    res = train_tagger(cfg)
    assert res["best"] > 0.95, res
    t = Tagger(out / "best")
    assert t.segment("今天我们的公园") == ["今天", "我们", "的", "公园"]
    assert t.segment("北京是中国的，Hello 2024年") == ["北京", "是", "中国", "的", "，", "Hello", " ", "2024年"]
    _LOSSLESS["tagger"] = t
    # CLI: N lines in -> N lines out, empty lines stay empty
    import subprocess
    import sys

    inp = tmp_path / "in.txt"
    inp.write_text("今天我们的公园\n\n北京是中国的\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "zhtools", "segment", str(inp), "--tagger", str(out / "best"),
                        "--sep", "/", "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n") == ["今天/我们/的/公园", "", "北京/是/中国/的", ""]


_LOSSLESS: dict[str, Tagger] = {}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("中国北京今天我们的是 ,，。😀a1\u0301\n")) | st.characters(),
               max_size=40))
def test_tagger_is_lossless(text: str) -> None:
    t = _LOSSLESS.get("tagger")
    if t is None:  # trained in the test above (pytest runs this file in order)
        import tempfile

        tmp = Path(tempfile.mkdtemp())
        out = tmp / "tagger"
        out.mkdir()
        (out / "pseudo.jsonl").write_text(json.dumps({"text": "中国北京", "words": ["中国", "北京"]},
                                                     ensure_ascii=False) + "\n", encoding="utf-8")
        train_tagger(TaggerConfig(corpus=[], out=str(out), base=str(_tiny_base(tmp)), layers=None,
                                  sentences=1, epochs=1, progress=False))
        t = _LOSSLESS["tagger"] = Tagger(out)
    assert "".join(t.segment(text)) == text


def test_sample_sentences_round_robin(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("".join(f"甲文件第{i}句话很长。\n" for i in range(400)), encoding="utf-8")
    b.write_text("".join(f"乙文件第{i}句话很长。\n" for i in range(40)), encoding="utf-8")
    s = sample_sentences([str(a), str(b)], 30, 64, seed=1)
    assert len(s) == 30 and s == sample_sentences([str(a), str(b)], 30, 64, seed=1)
    n_b = sum(x.startswith("乙") for x in s)
    assert 4 <= n_b <= 15  # the short file is drawn from until it runs out, not swamped
    assert len(set(s)) == 30


def test_min_margin_drops_unsure_labels(tmp_path: Path) -> None:
    out = tmp_path / "tagger"
    out.mkdir()
    rows = []
    for k in range(40):  # margins at offsets 1..3; offset 2 is always unsure
        rows.append(json.dumps({"text": "中国北京", "words": ["中国", "北京"],
                                "margins": {"1": 2.0, "2": -0.1 if k % 2 else 0.2, "3": 1.5}}))
    (out / "pseudo.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = TaggerConfig(corpus=[], out=str(out), base=str(_tiny_base(tmp_path)), sentences=40, epochs=1,
                       progress=False, min_margin=0.5)
    train_tagger(cfg)
    info = json.loads((out / "tagger.json").read_text(encoding="utf-8"))
    assert abs(info["kept_inner_labels"] - 2 / 3) < 1e-6


def test_self_training_round_mixes_teacher_and_tagger(tmp_path: Path) -> None:
    import numpy as np

    from zhtools.segment.tagger import _TaggerLabeller, pseudo_labels, words_from_margins

    r1 = tmp_path / "r1"
    r1.mkdir()
    rng = random.Random(1)
    rows = []
    for _ in range(60):
        ws = [rng.choice(WORDS) for _ in range(rng.randint(3, 6))]
        text, pos, m = "".join(ws), 0, {}
        for w in ws:  # teacher margins: +1.5 inside words, -1 (or an unsure -0.2) at boundaries
            m.update({pos + i: 1.5 for i in range(1, len(w))})
            if pos:
                m[pos] = rng.choice([-1.0, -0.2])
            pos += len(w)
        rows.append(json.dumps({"text": text, "words": ws, "margins": m}, ensure_ascii=False))
    (r1 / "pseudo.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    train_tagger(TaggerConfig(corpus=[], out=str(r1), base=str(_tiny_base(tmp_path)), sentences=60, epochs=2,
                              progress=False))
    cfg = TaggerConfig(corpus=[], out=str(tmp_path / "r2"), sentences=60, progress=False,
                       label_with=str(r1 / "best"), teacher_labels=str(r1 / "pseudo.jsonl"))
    got = pseudo_labels(cfg)
    assert len(got) == 60 and (tmp_path / "r2" / "pseudo.jsonl").exists()
    base = [json.loads(x) for x in rows]
    odds = [m for _w, m in _TaggerLabeller(str(r1 / "best"))([b["text"] for b in base])]
    sd_t = np.std([v for b in base for v in b["margins"].values()])
    sd_l = np.std([v for m in odds for v in m.values()])
    for b, lo, (text, words, mix) in zip(base, odds, got):
        assert text == b["text"] and "".join(words) == text and words == words_from_margins(text, mix)
        for k, v in b["margins"].items():
            assert abs(mix[int(k)] - (v / sd_t + lo[int(k)] / sd_l) / 2 * sd_t) < 2e-3
    assert pseudo_labels(cfg) == got  # cached
