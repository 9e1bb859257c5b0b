"""Benchmark helpers: data paths, result writing (JSON + markdown table), timing."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZHTOOLS_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"skipped: {path} not found (../shared/data absent)")
    return path


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def write(name: str, payload: dict[str, Any], rows: list[dict[str, Any]], note: str = "") -> None:
    """Write ``results/<name>.json`` and ``results/<name>.md`` (a table of ``rows``)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "rows": rows, "machine": machine()}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = [f"# {name}", "", note, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    lines += ["", f"machine: `{json.dumps(payload['machine'])}`", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def matmul_flops(dtype: torch.dtype = torch.float32, n: int = 1024, reps: int = 20) -> float:
    """Measured FLOP/s of a plain square matmul on this machine."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


def csl_pairs(split: str = "test") -> tuple[list[tuple[str, str]], int]:
    """CSL (abstract, title) pairs of ``split`` without the abstracts that also occur in
    train.tsv, and how many were dropped."""
    from zhtools.summarize import read_pairs

    data = require(SHARED / "summ_csl_clge")
    train_texts = {t for t, _ in read_pairs(data / "train.tsv")}
    pairs = read_pairs(data / f"{split}.tsv")
    keep = [p for p in pairs if p[0] not in train_texts]
    return keep, len(pairs) - len(keep)
