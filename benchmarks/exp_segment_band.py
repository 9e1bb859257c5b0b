"""Experiment (session 13): impacts across a gap from farther character pairs as a segmentation
signal, People's Daily dev sample (300 random PFR lines, seed 0; never the PKU test set).

For the gap between characters k and k+1 of a Hanzi run, ``x_d`` = log of the mean impact of the
pairs (a, a+d) that cross it (a = k+1-d .. k, both directions, inside the run), from
``ImpactEngine.band(width=W)``; ``x1`` equals the segmenter's ``impact``; ``band`` averages the
crossings of all distances 1..W. Every signal is z-scored and Otsu-thresholded on the bundled
calibration text like the shipped ones (no gold), and combinations are summed as in the
segmenter. Features are cached under runs/exp_segment_band/.
    python benchmarks/exp_segment_band.py [--width 3]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_segment_layers import pfr_sample  # noqa: E402
from common import ROOT, write  # noqa: E402

from zhtools.eval.cws import score_cws  # noqa: E402
from zhtools.segment import Segmenter  # noqa: E402
from zhtools.segment.segmenter import calibration_lines, merge_graphemes, otsu_threshold, presplit  # noqa: E402
from zhtools.text.tokenizer import split_sentences  # noqa: E402


def crossings(seg: Segmenter, texts: list[str], width: int) -> list[list[tuple[int, int, dict]]]:
    """Per text, per Hanzi run of 2+ chars: ``(start, end, {d: mean crossing impact per gap})``,
    impacts read in the same context pieces as the segmenter's."""
    runs = [[(s, e) for s, e, k in presplit(t) if k == "han" and e - s > 1] for t in texts]
    pieces, ptexts = [], []
    for i, t in enumerate(texts):
        for ps, pe in split_sentences(t, max_chars=seg.context):
            if any(s < pe and e > ps for s, e in runs[i]):
                pieces.append((i, ps))
                ptexts.append(t[ps:pe])
    units = [seg.engine.char_units(pt) for pt in ptexts]
    where: list[dict[int, tuple[int, int]]] = [{} for _ in texts]  # char -> (piece, unit index)
    mats = seg.engine.band(units, width)
    for p, ((i, ps), u) in enumerate(zip(pieces, units)):
        for k, (s0, e0) in enumerate(u.spans):
            if e0 - s0 == 1:
                where[i][ps + s0] = (p, k)
    out = []
    for i, rs in enumerate(runs):
        row = []
        for s, e in rs:
            cross = {d: np.full(e - s - 1, np.nan) for d in range(1, width + 1)}
            for b in range(e - s - 1):
                for d in range(1, width + 1):
                    vals = []
                    for a in range(max(s, s + b + 1 - d), s + b + 1):
                        c = a + d
                        if c < e and a in where[i] and c in where[i] and where[i][a][0] == where[i][c][0]:
                            F = mats[where[i][a][0]].matrix
                            ka, kc = where[i][a][1], where[i][c][1]
                            vals += [F[ka, kc], F[kc, ka]]
                    if vals:
                        cross[d][b] = np.mean(vals)
            row.append((s, e, cross))
        out.append(row)
    return out


def features(seg: Segmenter, texts: list[str], width: int) -> list[tuple[int, int, dict]]:
    recs = []
    for t, rb, rr in zip(texts, crossings(seg, texts, width), seg._runs(texts)):
        for (s, e, cross), (_s, _e, d1, d2, tg) in zip(rb, rr):
            f = seg.features([t[s:e]], [d1], [d2], [tg])
            for d in cross:
                f[f"x{d}"] = np.log(np.maximum(cross[d], 1e-12))
            with warnings.catch_warnings():  # gaps with no crossing pair at all: NaN (neutral)
                warnings.simplefilter("ignore", RuntimeWarning)
                allc = np.nanmean(np.stack(list(cross.values())), 0) if len(cross) > 1 else cross[1]
            f["band"] = np.log(np.maximum(allc, 1e-12))
            recs.append((s, e, f))
    return recs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=3)
    ap.add_argument("--lines", type=int, default=300)
    ap.add_argument("--cache", default=str(ROOT / "runs" / "exp_segment_band"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    seg = Segmenter()
    gold = pfr_sample(args.lines)
    texts = ["".join(g) for g in gold]
    cache = Path(args.cache) / f"w{args.width}_n{args.lines}.pkl"
    if cache.exists():
        cal, dev = pickle.loads(cache.read_bytes())
    else:
        cal, dev = features(seg, calibration_lines(), args.width), features(seg, texts, args.width)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps((cal, dev)))
    allv = {n: np.concatenate([f[n] for *_, f in cal]) for n in cal[0][2]}
    mu = {n: float(np.nanmean(v)) for n, v in allv.items()}
    sd = {n: float(np.nanstd(v)) for n, v in allv.items()}

    def score(combo: tuple[str, ...]) -> dict:
        th = otsu_threshold(sum(np.nan_to_num((allv[n] - mu[n]) / sd[n]) for n in combo))
        it = iter(dev)
        pred = []
        for t in texts:
            words: list[str] = []
            for s, e, kind in presplit(t):
                if kind != "han" or e - s == 1:
                    words.extend(t[s:e] if kind == "han" else [t[s:e]])
                    continue
                _s, _e, f = next(it)
                c = sum(np.nan_to_num((f[n] - mu[n]) / sd[n]) for n in combo) - th
                st = 0
                for j, v in enumerate(c):
                    if v < 0:
                        words.append(t[s + st : s + j + 1])
                        st = j + 1
                words.append(t[s + st : e])
            pred.append(merge_graphemes(t, words))
        return score_cws(gold, pred)

    combos = [("impact",), ("x1",), ("band",), *[(f"x{d}",) for d in range(2, args.width + 1)],
              ("impact", "pmi", "tagger"), ("impact", "x2", "pmi", "tagger"), ("band", "pmi", "tagger"),
              ("impact", "pmi"), ("impact", "x2", "pmi"), ("impact", "tagger"), ("impact", "x2", "tagger")]
    rows = []
    for combo in combos:
        r = score(combo)
        rows.append({"signals": "+".join(combo), **{k: r[k] for k in ("f1", "precision", "recall")}})
        print(rows[-1], flush=True)
    write("segment_band_dev", {"width": args.width, "lines": args.lines}, rows,
          f"People's Daily dev sample ({args.lines} random PFR lines, seed 0), shipped encoder at its probe "
          "layer; x_d = crossing impacts at distance d, band = mean over d = 1..W, x1 = impact; every "
          "signal z-scored and Otsu-thresholded on the bundled calibration text (no gold).")


if __name__ == "__main__":
    main()
