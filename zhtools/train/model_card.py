"""Write ``MODEL_CARD.md`` for a shipped encoder from its run records (no hand-typed numbers).

    python -m zhtools.train.model_card MODEL_DIR --corpus-stats STATS.tsv --commands CMDS.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zhtools.train.pretrain import is_packed


def _device(st: dict) -> str:
    return "GPU" if str(st.get("device", "cpu")).startswith("cuda") else "CPU"


def _stage_lines(k: int, st: dict, prev: dict | None) -> list[str]:
    pc = st["config"]
    tok_per_step = pc["max_len"] * max(1, pc["batch_tokens"] // pc["max_len"])
    init = "random initialisation" if not pc.get("init_from") else (
        f"continued from stage {k - 1} (step {prev['steps']:,})" if prev and prev["config"]["layers"] == pc["layers"]
        else f"grown from stage {k - 1} ({prev['config']['layers']} layers, step {prev['steps']:,}) by "
        f"`--grow {pc.get('grow', 'stack')}`" if prev else f"`--init-from {pc['init_from']}`")
    return [
        f"- Stage {k}: {pc['layers']} layers, {st['parameters']:,} parameters, {init}; "
        f"{st['steps']:,} optimizer steps of {tok_per_step:,} tokens ({pc['batch_tokens'] // pc['max_len']} x "
        f"{pc['max_len']}): {st['tokens_seen_upper_bound'] / 1e6:.1f}M tokens; peak lr {pc['lr']}, warmup "
        f"{pc['warmup']:g}{' steps' if pc['warmup'] >= 1 else ' of the steps'}, linear decay, data seed {pc['seed']}; wall time {st['wall_seconds_total'] / 60:.1f} min "
        f"over {st['runs']} invocation(s) on {_device(st)}"
        f"{'; read the corpus packed by `--pack`' if is_packed(pc['corpus']) else ''}.",
    ]


def write_card(model_dir: Path, corpus_stats: Path | None, commands: str, hardware: str) -> str:
    info = json.loads((model_dir / "pretrain_info.json").read_text())
    cfg = json.loads((model_dir / "config.json").read_text())
    cal = json.loads((model_dir / "segmenter_calibration.json").read_text())
    evals = [json.loads(x) for x in (model_dir / "log.jsonl").read_text().splitlines() if '"eval"' in x]
    stages_path = model_dir / "earlier_stages.json"
    stages = json.loads(stages_path.read_text()) if stages_path.exists() else []
    stages.append({**info, "evals": [e for e in evals if not e.get("final")]})
    pc = info["config"]
    tokens = sum(st["tokens_seen_upper_bound"] for st in stages)
    size = (model_dir / "model.safetensors").stat().st_size
    # a packed corpus (.npz) names no files: list those of the last stage that streamed text
    text_cfg = next((st["config"] for st in reversed(stages) if not is_packed(st["config"]["corpus"])), pc)
    files = [Path(p).name for p in text_cfg["corpus"]]
    devices = [_device(st) for st in stages]
    where = ("on CPU (no GPU was lent to this task)" if "GPU" not in devices else
             "on CPU, then on one GPU (stage " + ", ".join(str(k) for k, d in enumerate(devices, 1) if d == "GPU") + ")")
    chars = {}
    if corpus_stats and corpus_stats.exists():
        for line in corpus_stats.read_text().splitlines()[1:]:
            f = line.split("\t")
            chars[f[0]] = int(f[2])
    last = evals[-1]["eval"] if evals else {}
    vocab = stages[0]["vocab"]
    lines = [
        f"# {model_dir.name}",
        "",
        "Small character-level Chinese BERT (masked LM), the embedded default encoder of zhtools,",
        f"pretrained from scratch with `zhtools pretrain` {where}.",
        "",
        "## Architecture",
        f"- BertForMaskedLM, {cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
        f"{cfg['num_attention_heads']} heads, FFN {cfg['intermediate_size']}, max positions "
        f"{cfg['max_position_embeddings']}, vocabulary {cfg['vocab_size']} (characters covering "
        f"{vocab['coverage_target']:.2%} of the first {vocab['vocab_lines']:,} corpus lines, "
        "plus WordPiece continuations and frequent Latin words).",
        f"- Parameters: {info['parameters']:,}; `model.safetensors` stored in fp16: {size / 2**20:.1f} MiB.",
        "",
        "## Data",
        "Corpus files (all of `../shared/data/raw_zh_corpus/`, cleaned of evaluation texts by its "
        "maintainers; lines with CRC32 % 1000 == 0 held out for evaluation, never trained on):",
        "",
        "| file | characters |",
        "|---|---|",
        *[f"| {f} | {chars.get(f, '?'):,} |" if f in chars else f"| {f} | ? |" for f in files],
        f"| total | {sum(chars.get(f, 0) for f in files):,} |",
        "",
        "## Training",
        f"- **{tokens / 1e6:.1f}M tokens seen** in all (packed sequences, so nearly all are real tokens); "
        f"wall time {sum(st['wall_seconds_total'] for st in stages) / 60:.1f} min.",
        *[x for k, st in enumerate(stages, 1) for x in _stage_lines(k, st, stages[k - 2] if k > 1 else None)],
        f"- AdamW (betas 0.9/0.98, weight decay {pc['weight_decay']}); masking {pc['mask_prob']:.0%} (80/10/10), "
        "single tokens; bf16 autocast; MLM logits only at masked positions.",
        f"- Hardware: {hardware}.",
        "",
        "## Held-out evaluation (masked LM, fixed masking seed, 256 held-out sequences)",
        "",
        "| stage | step | MLM top-1 accuracy | loss | perplexity |",
        "|---|---|---|---|---|",
        *[f"| {k} | {e['step']} | {e['eval']['mlm_acc']:.4f} | {e['eval']['mlm_loss']:.3f} | "
          f"{e['eval']['perplexity']:.1f} |" for k, st in enumerate(stages, 1) for e in st["evals"]],
        "",
        f"Final: **MLM top-1 accuracy {last.get('mlm_acc', float('nan')):.4f}, perplexity "
        f"{last.get('perplexity', float('nan')):.1f}** (goal 0.50: "
        f"{'reached' if last.get('mlm_acc', 0) >= 0.5 else 'not reached; far more compute is needed'}).",
        "",
        "## Segmenter calibration",
        f"`segmenter_calibration.json`: label-free z-score statistics and Otsu thresholds fitted on "
        f"{cal['pairs']:,} adjacent character pairs of `data/samples/calibration.txt` (no gold labels), "
        f"for impacts read at layer {cal.get('layer', -1)} (-1 = last) of {cfg['num_hidden_layers']}.",
        "",
        "## Exact commands",
        "```",
        commands.strip(),
        "```",
        "",
    ]
    text = "\n".join(lines)
    (model_dir / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--corpus-stats", default=None)
    ap.add_argument("--commands", required=True, help="file with the exact commands run")
    ap.add_argument("--hardware", default="2-core x86-64 CPU (AVX512, bf16), 24 GB RAM, no GPU")
    a = ap.parse_args()
    print(write_card(Path(a.model_dir), Path(a.corpus_stats) if a.corpus_stats else None,
                     Path(a.commands).read_text(), a.hardware))


if __name__ == "__main__":
    main()
