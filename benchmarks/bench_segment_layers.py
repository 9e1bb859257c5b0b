"""Which encoder layer should the segmenter read? A label-free criterion, checked against gold.

For every layer of the encoder, adjacent impacts are computed on
  * the bundled unlabelled calibration text (data/samples/calibration.txt), and
  * 300 random lines of People's Daily 1998 (PFR, seed 0): a labelled *dev* set, never the PKU
    test set that `bench_segment.py` reports.
Label-free criterion: on the calibration text, how well the boundaries from impacts alone (Otsu)
agree with those from bigram PMI alone (word-span F1 of one against the other). PMI is an
independent view of the same text, so the layer whose impacts agree with it most is the one
whose impacts carry most lexical information. Gold check: PFR dev F1 of impacts alone and of
impact + PMI for the same layers. Impacts are cached under runs/bench_segment_layers/, keyed by a
hash of the model's weights (a re-shipped model never reads a stale cache).

    python benchmarks/bench_segment_layers.py [--model DIR] [--lines 300]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED, require, write  # noqa: E402

from zhtools.eval.cws import read_words, score_cws  # noqa: E402
from zhtools.models.loader import default_model_path  # noqa: E402
from zhtools.segment import Segmenter  # noqa: E402
from zhtools.segment.segmenter import calibration_lines  # noqa: E402


def pfr_sample(n: int) -> list[list[str]]:
    """``n`` random gold-segmented PFR lines (POS tags and compound brackets stripped)."""
    path = require(SHARED / "pfr_peoples_daily_199801" / "199801.txt")
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    random.Random(0).shuffle(lines)
    strip = re.compile(r"/[A-Za-z]+\]?[a-z]*$")
    return [[w for w in (strip.sub("", t).lstrip("[") for t in x.split()) if w] for x in lines[:n]]


def weights_key(model: str) -> str:
    """Short content hash of a model folder's weights (the model name when it is not a folder)."""
    files = sorted(Path(model).glob("*.safetensors")) if Path(model).is_dir() else []
    h = hashlib.sha1(model.encode() if not files else b"")
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--lines", type=int, default=300)
    ap.add_argument("--cache", default=str(ROOT / "runs" / "bench_segment_layers"))
    args = ap.parse_args()
    gold = pfr_sample(args.lines)
    texts = ["".join(g) for g in gold]
    cal_lines = calibration_lines()
    words = read_words(SHARED / "icwb2_sighan2005" / "gold" / "pku_training_words.utf8")
    from transformers import AutoConfig

    n_layers = AutoConfig.from_pretrained(args.model).num_hidden_layers
    cache = Path(args.cache) / weights_key(args.model)
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for layer in range(1, n_layers + 1):
        seg = Segmenter(args.model, signals=("impact", "pmi"), layer=layer)
        f = cache / f"seg_L{seg.engine.layer}.pkl"  # -1 = the last layer
        if f.exists():
            d = pickle.loads(f.read_bytes())
        else:
            d = {name: [c for k in range(0, len(xs), 64) for c in seg.cohesion(xs[k : k + 64])]
                 for name, xs in (("cal", cal_lines), ("dev", texts))}
            f.write_bytes(pickle.dumps(d))
        seg.calibrate(cal_lines, source="calibration.txt", coh=d["cal"])
        by_imp = seg.segment_with(cal_lines, d["cal"], "otsu", ("impact",))
        by_pmi = seg.segment_with(cal_lines, d["cal"], "otsu", ("pmi",))
        row = {"layer": layer, "agreement_with_pmi_f1": score_cws(by_pmi, by_imp)["f1"]}
        for sig in (("impact",), ("impact", "pmi")):
            pred = seg.segment_with(texts, d["dev"], "otsu", sig)
            row["dev_f1_" + "+".join(sig)] = score_cws(gold, pred, words)["f1"]
        rows.append(row)
        print(row, flush=True)
    best_free = max(rows, key=lambda r: r["agreement_with_pmi_f1"])["layer"]
    best_gold = max(rows, key=lambda r: r["dev_f1_impact+pmi"])["layer"]
    write("segment_layers", {"model": args.model, "dev_lines": len(texts), "label_free_choice": best_free,
                             "dev_gold_best": best_gold, "middle": max(1, n_layers // 2)}, rows,
          f"Encoder {Path(args.model).name} ({n_layers} layers). agreement_with_pmi_f1: label-free (unlabelled "
          "calibration text): word-span F1 between Otsu segmentations from impacts alone and from PMI alone. "
          f"dev_f1_*: People's Daily 1998, {len(texts)} random lines (labelled dev set, not PKU test). "
          f"Label-free choice: layer {best_free}; best on dev gold: layer {best_gold}.")


if __name__ == "__main__":
    main()
