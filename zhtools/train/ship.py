"""Ship a pretraining run as the embedded default encoder.

    python -m zhtools.train.ship RUN_DIR data/models/zhtools-char-small
    python -m zhtools.train.ship --calibrate data/models/zhtools-char-small   # calibration only

Copies the final masked-LM as fp16 safetensors (halves the size; loaded back as fp32 on CPU),
the tokenizer, the run's ``pretrain_info.json`` / ``log.jsonl``, and writes
``segmenter_calibration.json``: the segmenter's label-free Otsu threshold fitted on the bundled
unlabelled ``data/samples/calibration.txt``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch


def ship(run_dir: str | Path, dest: str | Path) -> Path:
    from transformers import AutoModelForMaskedLM

    from zhtools.text import ZhTokenizer

    run_dir, dest = Path(run_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model = AutoModelForMaskedLM.from_pretrained(str(run_dir), dtype=torch.float32)
    model.half().save_pretrained(str(dest), safe_serialization=True)
    ZhTokenizer.from_pretrained(run_dir).save_pretrained(dest)
    for name in ("pretrain_info.json", "log.jsonl", "vocab_info.json", "pretrain_config.json",
                 "earlier_stages.json"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, dest / name)
    write_calibration(dest)
    return dest


def write_calibration(dest: str | Path) -> dict:
    """(Re)fit the default segmenter's label-free calibration for the model in ``dest`` on the
    bundled sample and store it there (``python -m zhtools.train.ship --calibrate DIR``)."""
    from zhtools.segment.segmenter import CALIBRATION_FILE, Segmenter, save_calibration

    dest = Path(dest)
    (dest / CALIBRATION_FILE).unlink(missing_ok=True)
    # default signals: the shipped folder (by path too) gets the shipped tagger, any other model its own
    cal = Segmenter(str(dest)).ensure_calibrated()
    save_calibration(cal, dest / CALIBRATION_FILE)
    print(json.dumps(cal.__dict__))
    return cal.__dict__


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m zhtools.train.ship", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibrate", metavar="MODEL_DIR", help="only refit MODEL_DIR's segmenter calibration")
    ap.add_argument("run_dir", nargs="?", help="pretraining run folder (zhtools pretrain --out)")
    ap.add_argument("dest", nargs="?", help="destination model folder")
    a = ap.parse_args(argv)
    if a.calibrate:
        if a.run_dir or a.dest:
            ap.error("--calibrate takes only the model folder")
        write_calibration(a.calibrate)
    elif a.run_dir and a.dest:
        ship(a.run_dir, a.dest)
    else:
        ap.error("give RUN_DIR DEST, or --calibrate MODEL_DIR")


if __name__ == "__main__":
    main()
