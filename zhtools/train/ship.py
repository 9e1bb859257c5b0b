"""Ship a pretraining run as the embedded default encoder.

    python -m zhtools.train.ship RUN_DIR data/models/zhtools-char-small
    python -m zhtools.train.ship --calibrate data/models/zhtools-char-small   # calibration only
    python -m zhtools.train.ship --calibrate data/models/zhtools-char-small --probe-layer 2

``--probe-layer K`` stores the encoder layer that ``layer="auto"`` (the segmenter's and parser's
default) reads for this model, as ``zhtools_probe_layer`` in its config.json; without it a model
keeps what it has (none: the middle layer). Choose K without gold labels for segmentation
(``benchmarks/bench_segment_layers.py``) and on a dev split for parsing
(``benchmarks/bench_parse_layers.py``).

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


def set_probe_layer(dest: str | Path, layer: int | None) -> None:
    """Store (or with None remove) the model's own probe layer in ``dest/config.json``."""
    from zhtools.probe.engine import PROBE_LAYER_KEY

    path = Path(dest) / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    n = int(cfg.get("num_hidden_layers", 0))
    if layer is not None and not 0 <= layer <= n:
        raise ValueError(f"probe layer must be in 0..{n} for this {n}-layer encoder, got {layer}")
    cfg.pop(PROBE_LAYER_KEY, None)
    if layer is not None:
        cfg[PROBE_LAYER_KEY] = layer
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def ship(run_dir: str | Path, dest: str | Path, probe_layer: int | None = None) -> Path:
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
    if probe_layer is not None:
        set_probe_layer(dest, probe_layer)
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
    ap.add_argument("--probe-layer", type=int, metavar="K",
                    help="store K as the model's own probe layer (read by layer='auto')")
    ap.add_argument("run_dir", nargs="?", help="pretraining run folder (zhtools pretrain --out)")
    ap.add_argument("dest", nargs="?", help="destination model folder")
    a = ap.parse_args(argv)
    if a.calibrate:
        if a.run_dir or a.dest:
            ap.error("--calibrate takes only the model folder")
        if a.probe_layer is not None:
            set_probe_layer(a.calibrate, a.probe_layer)
        write_calibration(a.calibrate)
    elif a.run_dir and a.dest:
        ship(a.run_dir, a.dest, a.probe_layer)
    else:
        ap.error("give RUN_DIR DEST, or --calibrate MODEL_DIR")


if __name__ == "__main__":
    main()
