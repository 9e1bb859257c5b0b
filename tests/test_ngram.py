"""Label-free n-gram statistics: bigram PMI and branching entropy, built from a tiny corpus."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from zhtools.segment import Segmenter
from zhtools.segment.ngram import (
    ENTROPY_COLUMNS,
    EntropyStats,
    NgramStats,
    build_entropy,
    build_stats,
)

# 甲乙 is always followed by 丙 (right entropy 0); 乙丙 is followed by 丁 or 戊 equally (log 2)
CORPUS = ["甲乙丙丁", "甲乙丙戊", "甲乙丙丁", "甲乙丙戊", "x甲乙丙丁", "子甲乙丙戊"]


@pytest.fixture(scope="module")
def stats(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("ngram")
    raw = d / "raw.txt.gz"
    with gzip.open(raw, "wt", encoding="utf-8") as f:
        f.write("\n".join(CORPUS) + "\n")
    build_stats([str(raw)], d / "bigrams.npz", min_count=1)
    info = build_entropy([str(raw)], d / "entropy.npz", min_count=2)
    assert info["2-grams"] > 0 and info["3-grams"] > 0
    return d / "bigrams.npz", d / "entropy.npz"


def test_branching_entropy_by_hand(stats) -> None:
    ent = EntropyStats(stats[1])
    f = ent.features("甲乙丙丁")  # gaps: 甲|乙, 乙|丙, 丙|丁
    assert set(f) == set(ENTROPY_COLUMNS)
    assert all(v.shape == (3,) for v in f.values())
    step = 1 / 32
    # right entropy of the 2-gram ending left of the gap (minus sign: larger = more cohesive)
    assert np.isnan(f["hr2"][0])  # no 2-gram ends at 甲
    assert f["hr2"][1] == pytest.approx(0.0, abs=step)  # 甲乙 -> 丙 always
    assert f["hr2"][2] == pytest.approx(-math.log(2), abs=step)  # 乙丙 -> 丁 / 戊
    # left entropy of the 2-gram starting right of the gap: 乙丙 is always after 甲; 丙丁 after 乙
    assert f["hl2"][0] == pytest.approx(0.0, abs=step)
    assert f["hl2"][1] == pytest.approx(0.0, abs=step)
    assert np.isnan(f["hl2"][2])  # 丁 ends the run
    # 3-grams: 甲乙丙 -> 丁/戊 (log 2) at gap 丙|丁; 乙丙丁 preceded by 甲 only (2 times: min_count 2)
    assert f["hr3"][2] == pytest.approx(-math.log(2), abs=step)
    assert np.isnan(f["hr3"][:2]).all()
    assert f["hl3"][0] == pytest.approx(0.0, abs=step)
    assert np.isnan(f["hl3"][1:]).all()
    # 甲乙 is preceded by nothing (line start), x (not Hanzi: no 3-gram) or 子: seen once -> unknown
    assert np.isnan(ent.features("子甲乙")["hl2"][0])
    # unknown characters and short runs: NaN of the right length, never an error
    assert np.isnan(ent.features("龘龖")["hr2"]).all()
    assert ent.features("甲")["hr2"].shape == (0,)
    assert NgramStats(stats[0]).pmi("甲乙").shape == (1,)


def test_entropy_counts_add_up_over_blocks(stats, tmp_path: Path) -> None:
    """The corpus is read in blocks; an n-gram seen in several blocks is one n-gram."""
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    build_entropy([str(raw)], tmp_path / "blocks.npz", min_count=2, block_chars=5)
    one, many = np.load(stats[1]), np.load(tmp_path / "blocks.npz")
    for k in one.files:
        np.testing.assert_array_equal(one[k], many[k])


def test_entropy_signal_calibrates_per_column_and_stays_lossless(model_dir, stats) -> None:
    seg = Segmenter(model_dir, signals=("impact", "pmi", "entropy"), ngram_stats=stats[0], entropy_stats=stats[1])
    cal = seg.calibrate(["甲乙丙丁，甲乙丙戊。", "今天甲乙丙丁很好。"] * 3)
    assert set(ENTROPY_COLUMNS) <= set(cal.mu) and "entropy" not in cal.mu
    assert "impact+pmi+entropy" in cal.thresholds and "entropy" in cal.thresholds
    for text in ["甲乙丙丁甲乙丙戊", "子甲乙丙丁，x甲乙😀", "", "龘龖龘"]:
        assert "".join(seg.segment(text)) == text
    # pickling drops the loaded tables and reloads them
    import pickle

    again = pickle.loads(pickle.dumps(seg))
    assert again.segment("甲乙丙丁甲乙丙戊") == seg.segment("甲乙丙丁甲乙丙戊")


def test_default_signals_include_entropy_when_the_table_exists(model_dir, tmp_path: Path, stats) -> None:
    assert "entropy" in Segmenter(model_dir, entropy_stats=stats[1]).signals
    assert "entropy" not in Segmenter(model_dir, entropy_stats=tmp_path / "missing.npz").signals
    with pytest.raises(FileNotFoundError):
        Segmenter(model_dir, signals=("entropy",), entropy_stats=tmp_path / "missing.npz").segment("甲乙丙丁")
