"""Ship a trained summarizer: fp16 weights + MODEL_CARD.md in ``data/models/``.

    python -m zhtools.summarize.ship runs/summ/bi data/models/zhtools-summarizer-csl \
        --bench benchmarks/results/summarize_csl.json --command "zhtools summarize train ..."

``--average CKPT ...`` ships the mean of the model weights of several training checkpoints
(checkpoint averaging, e.g. the ends of successive run segments) instead of RUN/best.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from zhtools.summarize.model import BiSeq2Seq


def ship(run: Path, dest: Path, bench: Path | None, command: str, no_repeat_ngram: int = 0,
         average: list[Path] | None = None) -> None:
    best = run / "best" if (run / "best" / "summarizer.json").exists() else run
    model, tok, meta = BiSeq2Seq.load(best)
    if average:
        from zhtools.train.checkpoint import average_model_states

        model.load_state_dict(average_model_states(average), strict=True)
    model = model.half()
    info = {k: v for k, v in meta.items() if k not in ("decoder", "bos_id", "eos_id", "pad_id")}
    if average:
        info["averaged_checkpoints"] = [str(p) for p in average]
    info["no_repeat_ngram"] = no_repeat_ngram  # decoding default, chosen on the dev split
    model.save(dest, tok, info)
    n_params = sum(p.numel() for p in model.parameters())
    size = sum(f.stat().st_size for f in dest.rglob("*.safetensors"))
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    evals = [r for r in log if "eval" in r]
    steps = max((r["step"] for r in log), default=0)
    # elapsed_s restarts with every resumed run segment: report the last segment's
    train_s = next((r["elapsed_s"] for r in reversed(log) if "elapsed_s" in r), 0)
    if meta["decoder"].get("halves"):
        what = ["(full-length L2R and R2L directions without interaction, plus an L2R first half and an",
                "R2L second half that attend to each other in every layer and meet in the middle: the",
                "bidirectional mode decodes in ~n/2 steps; the halves are disjoint, so gold teacher forcing",
                "leaks nothing; copy gate)."]
        select = "meet-in-the-middle beam 2 ROUGE-L"
    else:
        what = ["(synchronous bidirectional attention in the top layer, leak-free training masks, copy gate)."]
        select = "greedy L2R ROUGE-L"
    lines = [
        f"# {dest.name}", "",
        "Bidirectional seq2seq title generator (zhtools.summarize): a zhtools-char-small encoder",
        "(the checkpoint named in the command below, fine-tuned here) + a Transformer decoder shared by",
        "a left-to-right and a right-to-left direction",
        *what,
        "",
        f"- parameters: {n_params / 1e6:.2f}M, weights fp16, {size / 2**20:.1f} MiB (safetensors)",
        f"- decoder: {json.dumps(meta['decoder'])}",
        f"- data: CLGE CSL `train.tsv` ({meta.get('train_pairs', '?')} title/abstract pairs, research use); "
        + ("dev ROUGE per epoch on the first 300 pairs of `val.tsv`; the averaged weights below were chosen "
           "on the full `val.tsv` (see the command)" if average else
           f"best epoch chosen on the first 300 pairs of `val.tsv` ({select})"),
        f"- source window {meta.get('src_len')} tokens (longer abstracts are truncated), titles up to "
        f"{meta.get('tgt_len')} tokens",
        f"- training: {steps} optimizer steps, {train_s / 60:.0f} min of the last run segment on a 2-core CPU "
        "(no GPU), bf16 autocast, one thread while other jobs shared the machine",
        *([f"- weights: element-wise mean of {len(average)} training checkpoints (checkpoint averaging): "
           + ", ".join(f"`{p}`" for p in average)] if average else []),
        f"- dev ROUGE per epoch: {json.dumps([{'step': r['step'], **{k: round(v, 2) for k, v in r['eval'].items()}} for r in evals])}",
        "", "## Command", "", "```", command, "```", "",
    ]
    if bench and bench.exists():
        b = json.loads(bench.read_text())
        lines += ["## Test scores (benchmarks/results/" + bench.name + ")", "",
                  f"CSL test, {b['n']} pairs ({b['dropped_duplicates']} abstracts also in train dropped), "
                  f"beam {b['config']['beam']}, character-level ROUGE / BLEU x100:", "",
                  "| model/mode | R-1 | R-2 | R-L | BLEU | ms/text |", "|---|---|---|---|---|---|"]
        for k, r in b["results"].items():
            lines.append(f"| {k} | {r['rouge1']:.2f} | {r['rouge2']:.2f} | {r['rougeL']:.2f} | "
                         f"{r['bleu']:.2f} | {r['ms_per_text']:.1f} |")
        lines.append("")
    (dest / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--bench", type=Path, default=None)
    ap.add_argument("--command", default="")
    ap.add_argument("--no-repeat-ngram", type=int, default=0)
    ap.add_argument("--average", type=Path, nargs="+", default=None, metavar="CKPT",
                    help="ship the mean weights of these training checkpoint folders")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ship(a.run, a.dest, a.bench, a.command, a.no_repeat_ngram, a.average)


if __name__ == "__main__":
    main()
