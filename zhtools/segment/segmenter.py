"""Unsupervised Chinese word segmentation from perturbed-masking impacts.

Pipeline (always lossless, ``''.join(words) == text``):

1. **Pre-split** deterministically into runs: Arabic numbers (half/full width, with internal
   ``.``/``,``/``·`` decimal or thousands marks, ``／`` fractions and ``∶`` ratios between
   digits: ``5.2``, ``１４·９``, ``1,000``, ``1／3``, ``3∶0``; a minus sign that starts a number
   belongs to it: ``－5``); Hanzi runs; Latin/alphanumeric runs (``GDP``, ``G20``, pinyin
   ``Zhōngguó``, Greek and Cyrillic words); whitespace runs; runs of one repeated dash or
   ellipsis character (``——``, ``……``, ``...``) as one token; URLs (``https://…``,
   ``www.…``; ASCII characters only, trailing punctuation left out) and e-mail addresses as
   one token; kana runs (``カタカナ``) and Hangul runs (``한국어``) as one token each; every
   other character alone (punctuation, emoji, symbols). Only Hanzi runs of 2+ characters go to
   the model. Words never cut a user-perceived character: an emoji ZWJ sequence (``👨‍👩‍👧``),
   a flag, a skin-tone modifier, a combining accent or a variation selector stays with its base
   character (Unicode extended grapheme clusters, via the ``regex`` package). **Numerals**: an
   Arabic number keeps a directly following calendar/time unit (年月日时分秒), magnitude
   (万, 亿) or percent sign as one word (``1998年``, ``３０％``, ``5万``), the convention shared
   by the PKU, MSR and CTB standards; measure words stay separate words (``3 张``, ``5 个``).
   Hanzi numerals (``二○○一年``, ``三十``) are ordinary Hanzi and are segmented by the model;
   then (``measure=True``, default) a word that starts with a Hanzi numeral followed by a
   measure word from a closed list is cut after the numeral (``一种`` -> ``一 种``, ``两个`` ->
   ``两 个``, ``三年`` -> ``三 年``, ``第一次`` -> ``第一 次``, ``几年`` -> ``几 年``), the
   numeral + classifier convention of the PKU, CTB and UD standards; a date year
   (``一九九八年``: two or more digit characters, no 十百千) stays one word, and so do words in
   which the numeral is not first (``进一步``) or that no measure word follows (``一些``,
   ``一起``, ``十分``, ``第一``). :func:`split_measure`.
2. **Adjacent impacts** for every neighbouring character pair, read in the context of the whole
   line (2n-1 perturbed sequences per line, batched across lines): ``d1`` = impact of the left
   character on the right one, ``d2`` = the reverse; cohesion ``c = log((d1 + d2) / 2)``. The
   log makes the rule invariant to the model's hidden-state scale.
3. **Signals** (``signals``), per adjacent pair: ``impact`` = the log-cohesion above (needs
   the encoder); ``pmi`` = bigram pointwise mutual information from raw text
   (:mod:`zhtools.segment.ngram`; the bundled table counts only public-domain laws and
   CC BY-SA Wikipedia, no evaluation text); ``entropy`` = branching entropy from the same
   counts (four columns: minus the entropy of the character after the 2-gram and the 3-gram
   ending left of the gap, and of the character before the 2-gram and the 3-gram starting right
   of it; each z-scored on its own); ``tagger`` = log-odds that no word starts at the
   right character, from the self-trained tagger (:mod:`zhtools.segment.tagger`: an encoder
   fine-tuned on this segmenter's own impact + PMI output over raw text, so still label-free;
   one extra forward pass per sentence). Each signal column is z-scored with its mean/std over
   the unlabelled calibration text; combined signals are summed. Default: with the shipped
   encoder, the shipped tagger alone (since session 16: distilled from the impact segmenter, it
   scores higher than its teacher on PKU, UD Chinese and People's Daily dev, at one encoder pass
   per sentence instead of 2n-1); with any other encoder, impact + PMI + entropy where the tables
   exist (:attr:`Segmenter.impact_signals`, the teacher's signals, also for the shipped encoder).
   Any encoder can use a tagger via ``tagger=`` and ``signals=``.
4. **Boundary rule** (``rule``):
   - ``"otsu"`` (default, scale-free): join two characters iff the (summed) z-score is at least
     Otsu's two-class threshold of that score over *unlabelled* calibration text (bundled
     ``data/samples/calibration.txt``, or any text via :meth:`Segmenter.calibrate`), fitted
     once per model. No gold labels, no hand constant; results never depend on batch mates.
   - ``"dp"``: dynamic program over word lengths (1..``max_word``) maximising the summed
     within-word score minus threshold; same threshold, plus a word-length cap.
   - ``"threshold"``: the reference baseline (Su 2020): join iff ``(d1 + d2)/2 >= 8``
     (impacts only).
   - ``"chars"``: every character a word (lower bound).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex

from zhtools.models.loader import default_model_path
from zhtools.probe.engine import ImpactEngine
from zhtools.text.tokenizer import is_cjk, split_sentences

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3007\U00020000-\U0002fa1f"
_DIGIT = r"[0-9\uff10-\uff19]"
# ASCII and full-width letters/digits, plus accented Latin (pinyin with tone marks: Zhōngguó),
# combining diacritics, Greek and Cyrillic letters
_ALNUM = (r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
          r"\u0300-\u036f\u0370-\u0373\u0376\u0377\u037b-\u037d\u0386\u0388-\u03ff\u0400-\u0481\u048a-\u04ff\u1e00-\u1eff]")
# a minus sign directly before a number that does not follow an alphanumeric: －5, -0.4
_SIGN = rf"(?:(?<!{_ALNUM})[-\uff0d\u2212](?={_DIGIT}))?"
# digits joined by a decimal point (., full-width, or the middle dot PKU/People's Daily use),
# thousands comma, fraction slash or ratio colon: 5.2, １４·９, 1,000, 1／3, 3∶0
_NUMBER = rf"{_SIGN}{_DIGIT}+(?:[.\uff0e\u00b7,/\uff0f\u2236]{_DIGIT}+)*"
# URL characters (RFC 3986, ASCII only: a URL glued to following Hanzi stops there); the last
# character may not be sentence punctuation or a closing bracket ("见http://a.cn/x)。")
_URL = r"(?:(?:https?|ftp)://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*[A-Za-z0-9/#=&_~%+\-]"
_EMAIL = r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
_RUNS = re.compile(
    rf"(?P<url>{_URL}|{_EMAIL})"
    # kana (not the middle dot ・, a name separator in Chinese text) and Hangul runs
    r"|(?P<kana>[\u3041-\u309f\u30a0-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f]+)"
    r"|(?P<hangul>[\uac00-\ud7af\u1100-\u11ff\u3131-\u318e]+)"
    # a number keeps a directly following date/time unit, magnitude or percent sign; otherwise
    # it must not run into Latin letters (then it is part of an alnum run: 20G)
    rf"|(?P<num>{_NUMBER}(?:[年月日时分秒]|[万亿]+|[%\uff05]|(?!{_ALNUM})))"
    # a run of one repeated dash or ellipsis character is one token: ——, ———, ……, ...
    r"|(?P<punct>(?P<rep>[\u2014\u2015\u2026\u2500.\uff0e\uff5e~-])(?P=rep)+)"
    rf"|(?P<han>[{_HAN}]+)"
    rf"|(?P<alnum>{_ALNUM}+(?:[.,\uff0e\uff0c]{_DIGIT}+)*)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
CALIBRATION_SAMPLE = SAMPLES / "calibration.txt"
RULES = ("otsu", "dp", "threshold", "chars")
CALIBRATION_FILE = "segmenter_calibration.json"
NGRAM_STATS = Path(__file__).resolve().parents[2] / "data" / "models" / "zh-bigram-wiki-laws" / "bigrams.npz"
SHIPPED_TAGGER = Path(__file__).resolve().parents[2] / "data" / "models" / "zhtools-tagger-small"
ENTROPY_STATS = NGRAM_STATS.parent / "entropy.npz"
SIGNALS = ("impact", "pmi", "entropy", "tagger")


def signal_columns(signals: Sequence[str]) -> tuple[str, ...]:
    """The z-scored feature columns behind ``signals`` (``entropy`` has four, the others one)."""
    # zhtools.segment.ngram is imported lazily here and below: importing it with the package
    # would make `python -m zhtools.segment.ngram` warn about a module loaded twice
    from zhtools.segment.ngram import ENTROPY_COLUMNS

    return tuple(c for s in signals for c in (ENTROPY_COLUMNS if s == "entropy" else (s,)))


_GRAPHEME = regex.compile(r"\X")


def presplit(text: str) -> list[tuple[int, int, str]]:
    """Deterministic runs ``(start, end, kind)`` covering ``text``; kind in
    han | num | alnum | url | kana | hangul | punct | space | other."""
    return [(m.start(), m.end(), m.lastgroup or "other") for m in _RUNS.finditer(text)]


# a leading numeral: Hanzi numeral characters (零 only inside: 零件, 零售 are words), with an
# ordinal 第 and an approximate 多 (第一次, 三十多个), or the approximate 几 / 多 alone (几年, 多项);
# and the digit characters of a year written in Hanzi (一九九八年)
# (traditional forms too: 兩 萬 億 幾; 個 種 條 張 ...)
_HAN_NUMERAL = regex.compile(
    r"第?[〇○一二三四五六七八九十百千万亿两兩萬億][〇○零一二三四五六七八九十百千万亿两兩萬億]*多?|几|幾|多")
_YEAR_DIGITS = frozenset("〇○零一二三四五六七八九")
_MAGNITUDES = frozenset(("百", "千", "万", "亿", "萬", "億", "千万", "千萬", "万一", "萬一"))
# a closed list of common classifiers (measure words) that, after a numeral, are separate words
# in the CTB and UD standards and in PKU (which keeps 一个 as one word); left out on purpose: ambiguous ones that
# also form lexicalised words with 一 (一些, 一起, 一点, 一切, 一道, 一口气, 一番, 一代, 一角,
# 一回事, 一声, 十分), and 月/日 (months and days: 十二月, 三日)
MEASURE_WORDS = frozenset(
    "个位名种次条件项家只张本天岁届场份批支台部辆架艘座所间层块片根棵朵匹头把双对套篇首句段"
    "封笔元斤吨米亩倍例则章节类门股颗粒周期趟遍辈"
    "個種條張項隻歲屆場臺輛間層塊頭雙對筆噸畝則節類門顆週輩")


def split_measure(word: str) -> list[str]:
    """``word`` cut after a leading Hanzi numeral that a measure word follows (``一种`` ->
    ``一 种``, ``三年`` -> ``三 年``); a written year (``一九九八年``) and every other word unchanged."""
    m = _HAN_NUMERAL.match(word)
    if m is None or m.end() >= len(word):
        return [word]
    num, nxt = m.group(), word[m.end()]
    if nxt == "年":
        cut = not (len(num) >= 2 and all(c in _YEAR_DIGITS for c in num))
    else:
        cut = nxt in MEASURE_WORDS and num not in _MAGNITUDES
    return [num, word[m.end():]] if cut else [word]


def merge_graphemes(text: str, words: list[str]) -> list[str]:
    """``words`` (a lossless split of ``text``) with every cut that falls inside an extended
    grapheme cluster removed: a combining mark, variation selector, emoji modifier or ZWJ
    sequence stays with its base character."""
    if len(words) < 2 or text.isascii():  # ASCII: only CR LF clusters, kept by the space runs
        return words
    starts = {m.start() for m in _GRAPHEME.finditer(text)}
    out, pos = [], 0
    for w in words:
        if out and pos not in starts:
            out[-1] += w
        else:
            out.append(w)
        pos += len(w)
    return out


def calibration_lines() -> list[str]:
    """The non-empty, stripped lines of the bundled unlabelled calibration sample."""
    text = CALIBRATION_SAMPLE.read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Threshold maximising the between-class variance of a 1-D sample (Otsu 1979)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2 or v.min() == v.max():
        return float(v.mean()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    p = hist / hist.sum()
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centers)
    mt = m0[-1]
    w1 = 1 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    k = int(np.argmax(between))
    return float(edges[k + 1])


@dataclass
class Calibration:
    """Label-free calibration: per-signal mean/std over unlabelled text, and for each signal
    combination (``"impact"``, ``"pmi"``, ``"impact+pmi"``) the Otsu threshold of the summed
    z-scores."""

    thresholds: dict[str, float]
    mu: dict[str, float]
    sd: dict[str, float]
    pairs: int
    source: str
    layer: int = -1  # encoder layer the impact statistics were read from (resolved index)
    tagger: str | None = None  # tagger the ``tagger`` statistics were read from

    @property
    def threshold(self) -> float:  # single-signal impact threshold in z units
        return self.thresholds.get("impact", 0.0)


def _combos(signals: Sequence[str]) -> list[tuple[str, ...]]:
    out = []
    for k in range(1, len(signals) + 1):
        out.extend(itertools.combinations(signals, k))
    return out


_CALIBRATION_LOCK = threading.RLock()


class Segmenter:
    """Reusable, picklable segmenter. ``model``: None (shipped default), HF name or folder.
    ``layer``: encoder layer whose impacts are read: ``"auto"`` (default) = the model's own probe
    layer from its config (the shipped 8-layer encoder: layer 2, ranked first by the label-free
    agreement criterion of ``benchmarks/bench_segment_layers.py``), else the middle layer;
    ``"middle"``, ``"last"`` or an index. ``bf16``: bf16 autocast of the encoder and tagger
    forwards on CPU (default off = exact fp32; on CPUs with native bf16, AVX512-BF16/AMX, the
    tagger 2.4x and the impacts 1.8x faster with nearly identical words, see the segmentation
    and tagger benchmarks). ``signals``: default see the module docstring; ``impact_signals``
    holds the impact segmenter's full combination. ``measure``: cut a leading Hanzi numeral off a following measure
    word (``一种`` -> ``一 种``, :func:`split_measure`; default on)."""

    def __init__(
        self,
        model: str | None = None,
        *,
        rule: str = "otsu",
        max_word: int = 6,
        context: int = 64,
        budget: int = 8192,
        fixed_threshold: float = 8.0,
        signals: Sequence[str] | None = None,
        ngram_stats: str | Path | None = None,
        entropy_stats: str | Path | None = None,
        layer: int | str = "auto",
        progress: bool = False,
        bf16: bool = False,
        tagger: str | Path | None = None,
        measure: bool = True,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}")
        self.model = model
        self.rule = rule
        self.max_word = max_word
        self.context = context
        self.budget = budget
        self.fixed_threshold = fixed_threshold
        self.layer = layer
        self.progress = progress
        self.bf16 = bool(bf16)
        self.measure = bool(measure)
        self.calibration: Calibration | None = None
        self._engine: ImpactEngine | None = None
        self.ngram_path = Path(ngram_stats) if ngram_stats else NGRAM_STATS
        self.entropy_path = Path(entropy_stats) if entropy_stats else ENTROPY_STATS
        self.tagger_path = Path(tagger) if tagger else SHIPPED_TAGGER
        # the impact segmenter: impact + the n-gram signals whose tables exist, + the shipped
        # tagger with the shipped encoder (the tagger was distilled from that encoder's segmenter)
        full = ("impact",) + (("pmi",) if self.ngram_path.exists() else ())
        full += ("entropy",) if self.entropy_path.exists() else ()
        shipped = model is None or Path(model).resolve() == default_model_path().resolve()
        if shipped and tagger is None and (SHIPPED_TAGGER / "config.json").exists():
            full += ("tagger",)
        self.impact_signals = full
        if signals is None:  # shipped tagger: it alone (it beats its teacher on every test set)
            signals = ("tagger",) if "tagger" in full else full
        bad = set(signals) - set(SIGNALS)
        if bad or not signals:
            raise ValueError(f"signals must be a non-empty subset of {SIGNALS}, got {signals}")
        self.signals = tuple(s for s in SIGNALS if s in signals)
        self._ngram = None
        self._entropy = None
        self._tagger = None

    # pickling: drop the loaded model, reload lazily
    def __getstate__(self) -> dict:
        st = dict(self.__dict__)
        st["_engine"] = None
        st["_ngram"] = None
        st["_entropy"] = None
        st["_tagger"] = None
        return st

    @staticmethod
    def _table(path: Path, cls, what: str):  # noqa: ANN001, ANN205
        """Load an n-gram statistics file with ``cls`` (a class of :mod:`zhtools.segment.ngram`)."""
        if not path.exists():
            raise FileNotFoundError(f"{what} statistics not found: {path}")
        return cls(path)

    @property
    def ngram(self):  # noqa: ANN201
        if self._ngram is None:
            from zhtools.segment.ngram import NgramStats

            self._ngram = self._table(self.ngram_path, NgramStats, "bigram")
        return self._ngram

    @property
    def entropy(self):  # noqa: ANN201
        if self._entropy is None:
            from zhtools.segment.ngram import EntropyStats

            self._entropy = self._table(self.entropy_path, EntropyStats, "branching-entropy")
        return self._entropy

    @property
    def engine(self) -> ImpactEngine:
        if self._engine is None:
            self._engine = ImpactEngine(self.model, layer=self.layer, budget=self.budget, bf16=self.bf16)
        return self._engine

    # ------------------------------------------------------------------ public API
    def segment(self, text: str) -> list[str]:
        return self.segment_many([text])[0]

    def cut(self, text: str) -> Iterator[str]:
        yield from self.segment(text)

    def segment_many(self, texts: Iterable[str], chunk: int = 64) -> Iterator[list[str]] | list[list[str]]:
        """Segment many texts, batching perturbed copies across them (input order kept)."""
        texts = list(texts)
        out: list[list[str]] = []
        for k in range(0, len(texts), chunk):
            out.extend(self._segment_chunk(texts[k : k + chunk]))
        return out

    def segment_with(self, texts: Sequence[str], cohesion, rule: str, signals=None) -> list[list[str]]:  # noqa: ANN001
        """Apply ``rule`` (and a subset of the calibrated ``signals``) to precomputed
        :meth:`cohesion` output, to compare rules and signals on one model pass."""
        old = self.rule, self.signals
        self.rule = rule
        if signals is not None:
            self.signals = tuple(x for x in SIGNALS if x in signals)
        try:
            return self._segment_chunk(list(texts), cohesion)
        finally:
            self.rule, self.signals = old

    def cohesion(self, texts: Sequence[str]) -> list[list[tuple[int, np.ndarray, np.ndarray]]]:
        """For each text, each Hanzi run ``(start, d1, d2)`` arrays over its adjacent pairs.

        Impacts are read inside context pieces (sentences, long ones cut at clause punctuation,
        at most ``context`` chars), which bounds the cost per character. A pair split by a
        hard cut (a Hanzi run longer than ``context`` with no punctuation) gets NaN, which the
        rules treat as neutral (joined)."""
        runs = [[(s, e) for s, e, k in presplit(t) if k == "han" and e - s > 1] for t in texts]
        pieces: list[tuple[int, int]] = []  # (text index, piece start)
        piece_texts: list[str] = []
        for i, t in enumerate(texts):
            if not runs[i]:
                continue
            for ps, pe in split_sentences(t, max_chars=self.context):
                if any(s < pe and e > ps for s, e in runs[i]):
                    pieces.append((i, ps))
                    piece_texts.append(t[ps:pe])
        pair_vals: list[dict[int, tuple[float, float]]] = [{} for _ in texts]
        if piece_texts:
            eng = self.engine
            units = [eng.char_units(pt) for pt in piece_texts]
            for (i, ps), u, a in zip(pieces, units, eng.adjacent(units)):
                for k in range(len(u.spans) - 1):
                    (s0, e0), (s1, e1) = u.spans[k], u.spans[k + 1]
                    if e0 - s0 == 1 and e1 - s1 == 1 and e0 == s1:
                        pair_vals[i][ps + s0] = (float(a[k, 0]), float(a[k, 1]))
        res: list[list[tuple[int, np.ndarray, np.ndarray]]] = []
        for i, rs in enumerate(runs):
            out = []
            for s, e in rs:
                vals = [pair_vals[i].get(p, (np.nan, np.nan)) for p in range(s, e - 1)]
                arr = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
                out.append((s, arr[:, 0], arr[:, 1]))
            res.append(out)
        return res

    def features(self, runs_text: Sequence[str], d1s, d2s, tgs=None) -> dict[str, np.ndarray]:  # noqa: ANN001
        """Raw per-pair signal columns over Hanzi runs: ``impact`` = log((d1+d2)/2), ``pmi``,
        the entropy columns, ``tagger`` = the tagger's log-odds that no word starts at the
        right character."""
        out: dict[str, np.ndarray] = {}
        if "impact" in self.signals:
            vals = [np.log(np.maximum((a + b) / 2, 1e-12)) for a, b in zip(d1s, d2s)]
            out["impact"] = np.concatenate(vals) if vals else np.zeros(0)
        if "pmi" in self.signals:
            vals = [self.ngram.pmi(r) for r in runs_text]
            out["pmi"] = np.concatenate(vals) if vals else np.zeros(0)
        if "entropy" in self.signals:
            ent = [self.entropy.features(r) for r in runs_text]
            for col in signal_columns(("entropy",)):
                out[col] = np.concatenate([e[col] for e in ent]) if ent else np.zeros(0)
        if "tagger" in self.signals:
            out["tagger"] = np.concatenate(tgs) if tgs else np.zeros(0)
        return out

    @property
    def tagger(self):  # noqa: ANN201
        with _CALIBRATION_LOCK:  # built once, also when threads ask at the same time
            if self._tagger is None:
                from zhtools.segment.tagger import Tagger

                if not (self.tagger_path / "config.json").exists():
                    raise FileNotFoundError(f"tagger not found: {self.tagger_path}")
                self._tagger = Tagger(self.tagger_path, budget=self.budget, bf16=self.bf16)
        return self._tagger

    def _runs(self, texts: Sequence[str], coh=None) -> list[list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]]:  # noqa: ANN001
        """Per text, every Hanzi run of 2+ characters with its per-pair arrays
        ``(start, end, d1, d2, tagger log-odds)`` (NaN where a signal is not used)."""
        runs = [[(s, e) for s, e, k in presplit(t) if k == "han" and e - s > 1] for t in texts]
        need_impact = "impact" in self.signals or self.rule == "threshold"
        if coh is None:
            coh = self.cohesion(texts) if need_impact and any(runs) else [[] for _ in texts]
        odds: list[dict[int, float]] = [{} for _ in texts]
        if "tagger" in self.signals and any(runs):
            from zhtools.segment.tagger import join_log_odds

            for i, pr in enumerate(self.tagger.start_probs(texts)):
                odds[i] = {k: join_log_odds(p) for k, p in pr}
        out = []
        for i, rs in enumerate(runs):
            by_start = {s: (d1, d2) for s, d1, d2 in coh[i]}
            row = []
            for s, e in rs:
                nan = np.full(e - s - 1, np.nan)
                d1, d2 = by_start.get(s, (nan, nan))
                tg = np.array([odds[i].get(k, np.nan) for k in range(s + 1, e)])
                row.append((s, e, d1, d2, tg))
            out.append(row)
        return out

    def calibrate(self, texts: Sequence[str], source: str = "input", coh=None) -> Calibration:  # noqa: ANN001
        """Fit per-signal mean/std and Otsu thresholds of every signal combination on
        unlabelled ``texts`` (no gold segmentation involved); ``coh``: their precomputed
        :meth:`cohesion`."""
        runs = [r for t, rs in zip(texts, self._runs(texts, coh)) for r in ((t, *x) for x in rs)]
        runs_text = [t[s0:e] for t, s0, e, *_ in runs]
        d1s, d2s, tgs = ([r[k] for r in runs] for k in (3, 4, 5))
        feats = self.features(runs_text, d1s, d2s, tgs)
        mu, sd = {}, {}
        for name, v in feats.items():
            v = v[np.isfinite(v)]
            mu[name], sd[name] = float(v.mean()) if v.size else 0.0, float(v.std()) if v.size > 1 else 1.0
            sd[name] = sd[name] or 1.0
        thresholds = {}
        for combo in _combos(self.signals):
            z = sum(np.nan_to_num((feats[n] - mu[n]) / sd[n]) for n in signal_columns(combo))
            thresholds["+".join(combo)] = otsu_threshold(z)
        n = int(next(iter(feats.values())).size)
        self.calibration = Calibration(thresholds, mu, sd, n, source, self._layer_index(),
                                       self._tagger_id() if "tagger" in self.signals else None)
        return self.calibration

    def ensure_calibrated(self) -> Calibration:
        """Use the model folder's ``segmenter_calibration.json`` if present (the shipped model
        has one, fitted on the bundled sample), else fit on the bundled sample now (once, also
        when threads ask at the same time)."""
        if self.calibration is not None:
            return self.calibration
        with _CALIBRATION_LOCK:
            return self._load_or_fit_calibration()

    def _load_or_fit_calibration(self) -> Calibration:
        if self.calibration is None:
            folder = Path(self.model) if self.model is not None else default_model_path()
            shipped = folder / CALIBRATION_FILE
            if shipped.exists():
                d = json.loads(shipped.read_text(encoding="utf-8"))
                same_layer = "impact" not in self.signals or d.get("layer", -1) == self._layer_index()
                same_tagger = "tagger" not in self.signals or d.get("tagger") == self._tagger_id()
                if same_layer and same_tagger and all(n in d.get("mu", {}) for n in signal_columns(self.signals)):
                    self.calibration = Calibration(**d)
                    return self.calibration
            self.calibrate(calibration_lines(), source=CALIBRATION_SAMPLE.name)
        return self.calibration

    # ------------------------------------------------------------------ internals
    def _tagger_id(self) -> str:
        """Which tagger the calibration's ``tagger`` statistics belong to: the shipped one by
        name, any other by its resolved path."""
        p = self.tagger_path.resolve()
        return p.name if p == SHIPPED_TAGGER.resolve() else str(p)

    def _layer_index(self) -> int:
        """The resolved encoder layer (loads the encoder only when impacts are used)."""
        return self.engine.layer if "impact" in self.signals or self.rule == "threshold" else -1

    def _segment_chunk(self, texts: list[str], coh=None) -> list[list[str]]:  # noqa: ANN001
        runs_per_text = [presplit(t) for t in texts]
        has_runs = self.rule != "chars" and any(k == "han" and e - s > 1 for r in runs_per_text for s, e, k in r)
        sig = self._runs(texts, coh) if has_runs else [[] for _ in texts]
        if has_runs and self.rule in ("otsu", "dp"):
            self.ensure_calibrated()
        out = []
        for text, runs, rs in zip(texts, runs_per_text, sig):
            by_start = {x[0]: x[2:] for x in rs}
            words: list[str] = []
            for s, e, kind in runs:
                if kind != "han" or e - s == 1 or self.rule == "chars":
                    if kind == "han":
                        words.extend(text[s:e])
                    else:
                        words.append(text[s:e])
                    continue
                run_words = self._split_run(text[s:e], *by_start[s])
                if self.measure:
                    run_words = [p for w in run_words for p in split_measure(w)]
                words.extend(run_words)
            out.append(merge_graphemes(text, words))
        return out

    def join_margins(self, texts: Sequence[str], coh=None) -> list[dict[int, float]]:  # noqa: ANN001
        """Per text ``{k: margin}`` for every adjacent Hanzi pair (k-1, k) the model decides:
        calibrated summed z-score minus the Otsu threshold (>= 0: joined by the ``otsu`` rule).
        Its size is the segmenter's confidence, e.g. to weight pseudo-labels. ``coh``: the
        texts' precomputed :meth:`cohesion`."""
        texts = list(texts)
        sig = self._runs(texts, coh)
        self.ensure_calibrated()
        out = []
        for t, rs in zip(texts, sig):
            m: dict[int, float] = {}
            for s, e, d1, d2, tg in rs:
                m.update({s + 1 + k: float(v) for k, v in enumerate(self._margin(t[s:e], d1, d2, tg))})
            out.append(m)
        return out

    def _margin(self, run: str, d1: np.ndarray, d2: np.ndarray, tg: np.ndarray | None = None) -> np.ndarray:
        cal = self.calibration
        feats = self.features([run], [d1], [d2], [tg] if tg is not None else None)
        z = sum(np.nan_to_num((feats[n] - cal.mu[n]) / cal.sd[n]) for n in signal_columns(self.signals))
        return z - cal.thresholds["+".join(self.signals)]

    def _split_run(self, run: str, d1: np.ndarray, d2: np.ndarray, tg: np.ndarray | None = None) -> list[str]:
        d = (d1 + d2) / 2
        if self.rule == "threshold":
            join = ~(d < self.fixed_threshold)  # NaN (no impact available) -> joined
        else:
            c = self._margin(run, d1, d2, tg)
            if self.rule == "dp":
                return _dp_split(run, c, self.max_word)
            join = c >= 0
        words, start = [], 0
        for k, j in enumerate(join):
            if not j:
                words.append(run[start : k + 1])
                start = k + 1
        words.append(run[start:])
        return words


def _dp_split(run: str, c: np.ndarray, max_word: int) -> list[str]:
    """Best split of ``run`` into words of length <= max_word maximising within-word cohesion
    ``sum(c)`` (c = log-cohesion minus threshold for each adjacent pair)."""
    n = len(run)
    pref = np.concatenate([[0.0], np.cumsum(c)])
    best = np.full(n + 1, -np.inf)
    back = np.zeros(n + 1, dtype=int)
    best[0] = 0.0
    for e in range(1, n + 1):
        for L in range(1, min(max_word, e) + 1):
            s = e - L
            inner = pref[e - 1] - pref[s] if L > 1 else 0.0
            v = best[s] + inner
            if v > best[e]:
                best[e], back[e] = v, s
    words, e = [], n
    while e > 0:
        words.append(run[back[e] : e])
        e = back[e]
    return words[::-1]


def save_calibration(cal: Calibration, path: str | Path) -> None:
    Path(path).write_text(json.dumps(cal.__dict__, indent=1), encoding="utf-8")


__all__ = ["Segmenter", "presplit", "split_measure", "merge_graphemes", "otsu_threshold", "Calibration", "is_cjk"]
