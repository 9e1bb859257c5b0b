"""Self-trained fast tagger vs the impact segmenter it was distilled from (PKU test).

Same run: the impact segmenter (impact + PMI + entropy + the shipped tagger, the default before
session 16), the tagger alone (``zhtools segment --fast``) and the tagger + PMI + entropy (no impact pass) on the first
--lines PKU test lines (F1 and chars/s side by side), then the tagger, the tagger + n-gram signals
and jieba on the whole test file.
    python benchmarks/bench_tagger.py --tagger runs/tagger/best [--lines 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, require, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tagger", default=None, help="tagger folder (default: the shipped one)")
    ap.add_argument("--lines", type=int, default=500)
    ap.add_argument("--name", default="segment_tagger")
    args = ap.parse_args()

    import jieba

    from zhtools.eval.cws import read_segmented, read_words, score_cws
    from zhtools.segment import Segmenter
    from zhtools.segment.tagger import Tagger

    gold_all = [g for g in read_segmented(require(SHARED / "icwb2_sighan2005" / "gold" / "pku_test_gold.utf8")) if g]
    words = read_words(SHARED / "icwb2_sighan2005" / "gold" / "pku_training_words.utf8")
    rows = []

    def run(label: str, fn, gold, scope: str) -> list[list[str]]:  # noqa: ANN001
        texts = ["".join(g) for g in gold]
        fn(texts[:16])  # warm-up / lazy loading
        t = time.perf_counter()
        pred = fn(texts)
        dt = time.perf_counter() - t
        assert all("".join(p) == x for p, x in zip(pred, texts))
        s = score_cws(gold, pred, words)
        rows.append({"segmenter": label, "lines": scope, "f1": s["f1"], "precision": s["precision"],
                     "recall": s["recall"], "oov_recall": s["oov_recall"],
                     "chars_per_s": sum(map(len, texts)) / dt})
        print(rows[-1], flush=True)
        return pred

    tagger = Tagger(args.tagger)
    teacher = Segmenter(signals=Segmenter().impact_signals)  # impact + PMI + entropy + the shipped tagger
    fast = Segmenter(signals=("pmi", "entropy", "tagger"), tagger=args.tagger)  # no impact pass
    info = json.loads((Path(tagger.path) / "tagger.json").read_text(encoding="utf-8"))
    steps = info.get("teacher_encoder_steps")
    trained = f"encoder step {steps}" if steps else info.get("teacher", "?")
    jieba.initialize()
    sub = gold_all[: args.lines]
    scope = f"first {len(sub)}"
    run(f"zhtools impact segmenter ({'+'.join(teacher.signals)})", teacher.segment_many, sub, scope)
    run("zhtools tagger (self-trained)", tagger.segment_many, sub, scope)
    run("zhtools tagger+pmi+entropy (no impacts)", fast.segment_many, sub, scope)
    run("jieba", lambda ts: [jieba.lcut(t) for t in ts], sub, scope)
    fp32 = run("zhtools tagger (self-trained)", tagger.segment_many, gold_all, f"all {len(gold_all)}")
    # the same tagger under bf16 autocast (Tagger(bf16=True), zhtools segment --bf16)
    bf16 = run("zhtools tagger, bf16 autocast", Tagger(args.tagger, bf16=True).segment_many, gold_all,
               f"all {len(gold_all)}")
    bf16_speed = rows[-1]["chars_per_s"] / rows[-2]["chars_per_s"]
    same = sum(a == b for a, b in zip(fp32, bf16)) / len(gold_all)
    run("zhtools tagger+pmi+entropy (no impacts)", fast.segment_many, gold_all, f"all {len(gold_all)}")
    run("jieba", lambda ts: [jieba.lcut(t) for t in ts], gold_all, f"all {len(gold_all)}")
    speed = rows[1]["chars_per_s"] / rows[0]["chars_per_s"]
    speed_fast = rows[2]["chars_per_s"] / rows[0]["chars_per_s"]
    layers = json.loads((Path(tagger.path) / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    write(args.name, {"tagger": tagger.path, "speedup_vs_teacher": speed, "ngram_tagger_speedup_vs_default": speed_fast,
                      "bf16_speedup": bf16_speed, "bf16_identical_lines": same}, rows,
          f"SIGHAN 2005 PKU test; tagger = {tagger.path} ({layers} layers, trained on "
          f"{info.get('train_sentences', '?')} raw sentences pseudo-labelled by the impact segmenter "
          f"({trained} at training time; no gold labels). Tagger speed-up over the impact "
          f"segmenter (same lines, same run): {speed:.1f}x; tagger + PMI + entropy: {speed_fast:.1f}x. "
          f"bf16 autocast (CPU): {bf16_speed:.2f}x the fp32 tagger's chars/s, identical words on {same:.1%} of lines.")


if __name__ == "__main__":
    main()
