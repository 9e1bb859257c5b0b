"""Which encoder layer to read for parsing: Eisner UAS (gold words, predicted root) per layer on
UD Chinese GSDSimp *dev* (never test), next to right-chain on the same sentences.
    python benchmarks/bench_parse_layers.py [--model DIR] [--sentences 150] [--layers 1 2 3 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, require, write  # noqa: E402

from zhtools.eval.conllu import read_conllu  # noqa: E402
from zhtools.eval.dep import right_chain, score_dep  # noqa: E402
from zhtools.models.loader import default_model_path  # noqa: E402
from zhtools.parse import Parser  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--sentences", type=int, default=150)
    ap.add_argument("--max-words", type=int, default=40)
    ap.add_argument("--layers", type=int, nargs="*", default=None, help="default: every layer")
    args = ap.parse_args()
    sents = read_conllu(require(SHARED / "ud_chinese" / "gsdsimp" / "zh_gsdsimp-ud-dev.conllu"))
    sents = [s for s in sents if 2 <= len(s.words) <= args.max_words][: args.sentences]
    gold, punct = [s.heads for s in sents], [s.punct_mask() for s in sents]
    words = [s.words for s in sents]
    texts = ["".join(w) for w in words]
    r = score_dep(gold, [right_chain(len(g)) for g in gold], punct)
    rows = [{"layer": "right-chain", "uas": r["uas"], "uuas": r["uuas"], "uas_nopunct": r["uas_nopunct"]}]
    from transformers import AutoConfig

    n_layers = AutoConfig.from_pretrained(args.model).num_hidden_layers
    for layer in args.layers or range(1, n_layers + 1):
        res = Parser(args.model, decoder="eisner", layer=layer).parse_many(texts, words)
        r = score_dep(gold, [x.heads for x in res], punct)
        rows.append({"layer": layer, "uas": r["uas"], "uuas": r["uuas"], "uas_nopunct": r["uas_nopunct"]})
        print(rows[-1], flush=True)
    write("parse_layers", {"model": args.model, "sentences": len(sents)}, rows,
          f"UD Chinese GSDSimp dev, {len(sents)} sentences of 2-{args.max_words} words: Eisner UAS with gold words "
          f"and predicted root, reading each layer of {Path(args.model).name} ({n_layers} layers; middle = "
          f"{max(1, n_layers // 2)}).")


if __name__ == "__main__":
    main()
