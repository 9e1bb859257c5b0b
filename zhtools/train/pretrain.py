"""``zhtools pretrain``: masked-LM pretraining of a small character-level Chinese encoder.

Corpus files (plain or .gz) are streamed line by line, never loaded whole. Lines are
interleaved across files (mixing domains), tokenized with the shared tokenizer, packed into
``[CLS] line [SEP] line ... [SEP]`` sequences of ``max_len`` tokens, shuffled in a bounded
buffer and cut into batches of ``batch_tokens // max_len`` sequences. Each line whose CRC32 is
divisible by ``heldout_mod`` is held out for evaluation (never trained on).

Masking (15%, 80/10/10, optional whole n-gram spans) is seeded by the global batch index, so a
resumed run sees exactly the batches and masks an uninterrupted run would see. Logits are
computed only at masked positions (a large saving for small models).

For a fast accelerator, Python-side tokenization is the bottleneck: ``pack_corpus`` (CLI
``zhtools pretrain --pack FILE.npz``) tokenizes and packs the corpus once into uint16 arrays
(``train`` and ``heldout``, the same held-out sequences as streaming), and a corpus given as one
such ``.npz`` is read from memory: each epoch is a seeded permutation of its sequences, batches
are masked in a background thread.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import random
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zhtools.text.batching import pad
from zhtools.text.tokenizer import (
    ZhTokenizer,
    build_vocab,
    iter_lines,
    open_text,
    tokenizer_from_vocab,
)
from zhtools.train.loop import TrainConfig, Trainer, dist_info

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    corpus: list[str]
    out: str
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    max_len: int = 128
    steps: int = 10000
    batch_tokens: int = 8192
    lr: float = 5e-4
    warmup: float = 0.04
    weight_decay: float = 0.01
    grad_accum: int = 1
    lookahead: bool = False
    mask_prob: float = 0.15
    span_max: int = 1  # >1: mask whole n-gram spans of 1..span_max tokens
    heldout_mod: int = 1000
    heldout_seqs: int = 256
    vocab_lines: int = 300_000
    vocab_coverage: float = 0.9995
    eval_every: int = 500
    save_every: int = 200
    seed: int = 0
    bf16: bool | None = None
    max_minutes: float | None = None
    progress: bool = True
    init_from: str | None = None  # HF masked-LM folder: start from its weights and tokenizer
    grow: str = "stack"  # deeper than init_from: "stack" (layer i <- i mod L) or "interleave"


def interleave_lines(paths: Sequence[str], block: int = 64) -> Iterator[str]:
    """Round-robin blocks of ``block`` non-empty lines from each file until all are exhausted."""
    files = [open_text(p) for p in paths]
    try:
        live = list(range(len(files)))
        while live:
            nxt = []
            for k in live:
                got = 0
                for line in files[k]:
                    line = line.strip()
                    if line:
                        yield line
                        got += 1
                        if got >= block:
                            break
                if got >= block:
                    nxt.append(k)
            live = nxt
    finally:
        for f in files:
            f.close()


def is_heldout(line: str, mod: int) -> bool:
    return zlib.crc32(line.encode("utf-8")) % mod == 0


def pack_sequences(
    lines: Iterator[str], tok: ZhTokenizer, max_len: int, chunk: int = 512
) -> Iterator[list[int]]:
    """Pack tokenized lines into ``[CLS] a [SEP] b [SEP]`` sequences of at most ``max_len``."""
    room = max_len - 1  # [CLS]
    cur: list[int] = []
    while True:
        block = list(itertools.islice(lines, chunk))
        if not block:
            break
        for enc in tok.encode_batch(block):
            ids = enc.ids
            while ids:
                take = ids[: room - 1]
                ids = ids[room - 1 :]
                if cur and len(cur) + len(take) + 1 > room:
                    yield [tok.cls_id, *cur]
                    cur = []
                cur.extend(take)
                cur.append(tok.sep_id)
    if cur:
        yield [tok.cls_id, *cur]


def shuffled(items: Iterator[list[int]], size: int, rng: random.Random) -> Iterator[list[int]]:
    buf: list[list[int]] = []
    for x in items:
        if len(buf) < size:
            buf.append(x)
            continue
        k = rng.randrange(size)
        yield buf[k]
        buf[k] = x
    rng.shuffle(buf)
    yield from buf


def mask_tokens(
    ids: torch.Tensor,
    attn: torch.Tensor,
    tok: ZhTokenizer,
    gen: torch.Generator,
    prob: float = 0.15,
    span_max: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose ``prob`` of real non-special tokens (as n-gram spans of length
    1..``span_max`` if > 1); of those 80% -> [MASK], 10% random token, 10% unchanged.
    Returns ``(inputs, labels)`` with labels -100 where not chosen."""
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in (tok.cls_id, tok.sep_id, tok.pad_id):
        special |= ids == s
    cand = attn.bool() & ~special
    if span_max <= 1:
        chosen = (torch.rand(ids.shape, generator=gen) < prob) & cand
    else:
        # span starts with probability prob / mean_len, each span extends 1..span_max tokens
        lens = torch.randint(1, span_max + 1, ids.shape, generator=gen)
        mean_len = (span_max + 1) / 2
        starts = (torch.rand(ids.shape, generator=gen) < prob / mean_len) & cand
        chosen = torch.zeros_like(cand)
        for off in range(span_max):
            shifted = torch.zeros_like(cand)
            ok = starts & (lens > off)
            shifted[:, off:] = ok[:, : ids.shape[1] - off] if off else ok
            chosen |= shifted
        chosen &= cand
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    r = torch.rand(ids.shape, generator=gen)
    inputs = ids.clone()
    inputs[chosen & (r < 0.8)] = tok.mask_id
    rand_pos = chosen & (r >= 0.8) & (r < 0.9)
    n_special = 5
    inputs[rand_pos] = torch.randint(n_special, tok.vocab_size, (int(rand_pos.sum()),), generator=gen)
    return inputs, labels


class MaskedLMOnly(torch.nn.Module):
    """Wraps a HF masked-LM so the vocabulary head runs only at the masked positions."""

    def __init__(self, mlm: torch.nn.Module) -> None:
        super().__init__()
        self.mlm = mlm

    def head(self) -> torch.nn.Module:
        for name in ("cls", "lm_head", "predictions"):
            if hasattr(self.mlm, name):
                return getattr(self.mlm, name)
        raise TypeError(f"unsupported masked-LM class {type(self.mlm).__name__}")

    def forward(self, ids: torch.Tensor, attn: torch.Tensor, labels: torch.Tensor):
        hidden = self.mlm.base_model(input_ids=ids, attention_mask=attn).last_hidden_state
        sel = labels != -100
        logits = self.head()(hidden[sel])
        target = labels[sel]
        loss = F.cross_entropy(logits.float(), target)
        correct = (logits.argmax(-1) == target).float().sum()
        return loss, correct, target.numel()


def mlm_loss(model: torch.nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
    dev = next(model.parameters()).device
    ids, attn, labels = (t.to(dev, non_blocking=True) for t in batch)
    loss, correct, n = model(ids, attn, labels)
    return loss, {"acc": correct / max(1, n)}


def evaluate_mlm(
    model: MaskedLMOnly, seqs: list[list[int]], tok: ZhTokenizer, cfg: PretrainConfig, device
) -> dict[str, float]:
    """Held-out MLM top-1 accuracy and perplexity under a fixed masking seed."""
    gen = torch.Generator().manual_seed(12345)
    tot_loss, tot_correct, tot_n = 0.0, 0.0, 0
    per = max(1, cfg.batch_tokens // cfg.max_len)
    for k in range(0, len(seqs), per):
        ids, attn = pad(seqs[k : k + per], tok.pad_id)
        inputs, labels = mask_tokens(ids, attn, tok, gen, cfg.mask_prob, 1)
        loss, correct, n = model(inputs.to(device), attn.to(device), labels.to(device))
        tot_loss += float(loss) * n
        tot_correct += float(correct)
        tot_n += n
    mean = tot_loss / max(1, tot_n)
    return {"mlm_acc": tot_correct / max(1, tot_n), "mlm_loss": mean, "perplexity": float(torch.exp(torch.tensor(mean)))}


def make_tokenizer(cfg: PretrainConfig) -> tuple[ZhTokenizer, dict]:
    """Build (or reuse from ``out``) the character vocabulary."""
    out = Path(cfg.out)
    if (out / "tokenizer.json").exists():
        return ZhTokenizer.from_pretrained(out), json.loads((out / "vocab_info.json").read_text())
    if cfg.init_from:  # the weights fix the vocabulary
        tok = ZhTokenizer.from_pretrained(cfg.init_from)
        tok.model_max_length = cfg.max_len
        info = {"vocab_size": tok.vocab_size, "from": str(cfg.init_from)}
    elif is_packed(cfg.corpus):
        raise ValueError(
            f"{cfg.corpus[0]} holds token ids: give --init-from (the model it was packed for) or an "
            "--out folder that holds the tokenizer it was packed with (the --out of --pack)")
    else:
        lines = (ln for ln in itertools.islice(interleave_lines(cfg.corpus), cfg.vocab_lines)
                 if not is_heldout(ln, cfg.heldout_mod))
        vocab = build_vocab(lines, coverage=cfg.vocab_coverage)
        tok = tokenizer_from_vocab(vocab, model_max_length=cfg.max_len)
        info = {"vocab_size": len(vocab), "coverage_target": cfg.vocab_coverage, "vocab_lines": cfg.vocab_lines}
    if dist_info()[0] == 0:
        out.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(out)
        (out / "vocab_info.json").write_text(json.dumps(info, indent=1))
    return tok, info


def is_packed(corpus: Sequence[str]) -> bool:
    """A corpus given as one ``pack_corpus`` file."""
    return len(corpus) == 1 and str(corpus[0]).endswith(".npz")


def _load_packed(path: str, tok: ZhTokenizer, max_len: int, key: str) -> np.ndarray:
    """The ``key`` rows (``train`` or ``heldout``) of a packed corpus; only that member is read."""
    with np.load(path) as z:
        rows, vocab = z[key], int(z["vocab_size"])
    if vocab != tok.vocab_size or rows.shape[1] != max_len:
        raise ValueError(
            f"{path} was packed for vocabulary {vocab} / max_len {rows.shape[1]}, "
            f"not {tok.vocab_size} / {max_len}")
    return rows


def _rows(seqs: list[list[int]], max_len: int, pad_id: int) -> np.ndarray:
    out = np.full((len(seqs), max_len), pad_id, dtype=np.uint16)
    for k, s in enumerate(seqs):
        out[k, : len(s)] = s
    return out


def pack_corpus(cfg: PretrainConfig, dest: str | Path) -> dict[str, int]:
    """Tokenize and pack ``cfg.corpus`` once into ``dest`` (.npz: uint16 ``train`` and
    ``heldout`` rows of ``max_len``, pad-filled), in the order streaming would read them."""
    tok, _ = make_tokenizer(cfg)
    if tok.vocab_size > np.iinfo(np.uint16).max:
        raise ValueError(f"vocabulary of {tok.vocab_size} does not fit uint16")
    held = _rows(heldout_sequences(cfg, tok), cfg.max_len, tok.pad_id)
    lines = (ln for ln in interleave_lines(cfg.corpus) if not is_heldout(ln, cfg.heldout_mod))
    blocks, cur = [], []
    for seq in pack_sequences(lines, tok, cfg.max_len):
        cur.append(seq)
        if len(cur) == 65536:
            blocks.append(_rows(cur, cfg.max_len, tok.pad_id))
            cur = []
    blocks.append(_rows(cur, cfg.max_len, tok.pad_id))
    train = np.concatenate(blocks)
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{dest}.tmp.npz")
    np.savez_compressed(tmp, train=train, heldout=held, vocab_size=np.int64(tok.vocab_size))
    tmp.replace(dest)
    return {"train_sequences": len(train), "train_tokens": int((train != tok.pad_id).sum()),
            "heldout_sequences": len(held)}


def heldout_sequences(cfg: PretrainConfig, tok: ZhTokenizer) -> list[list[int]]:
    if is_packed(cfg.corpus):
        held = _load_packed(cfg.corpus[0], tok, cfg.max_len, "heldout")[: cfg.heldout_seqs]
        return [[int(t) for t in row if t != tok.pad_id] for row in held]
    lines = (ln for ln in interleave_lines(cfg.corpus) if is_heldout(ln, cfg.heldout_mod))
    return list(itertools.islice(pack_sequences(lines, tok, cfg.max_len), cfg.heldout_seqs))


def _prefetch(items: Iterator, depth: int = 4) -> Iterator:
    """Run ``items`` in a background thread, ``depth`` ahead (masking overlaps the GPU step)."""
    q: queue.Queue = queue.Queue(depth)
    done = object()

    def work() -> None:
        try:
            for x in items:
                q.put(x)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (x := q.get()) is not done:
        if isinstance(x, BaseException):
            raise x
        yield x


def packed_batches(cfg: PretrainConfig, tok: ZhTokenizer):
    """``start -> iterator`` over masked batches of a packed corpus, endless like the streaming
    version (epoch ``e`` is a permutation seeded by ``seed`` and ``e``)."""
    train = _load_packed(cfg.corpus[0], tok, cfg.max_len, "train")
    per = max(1, cfg.batch_tokens // cfg.max_len)
    n_batches = max(1, len(train) // per)

    def batches(start: int) -> Iterator:
        def gen() -> Iterator:
            idx = start
            while True:
                epoch, first = divmod(idx, n_batches)
                perm = np.random.default_rng(cfg.seed * 1000 + epoch).permutation(len(train))
                for k in range(first, n_batches):
                    ids = torch.from_numpy(train[np.sort(perm[k * per : (k + 1) * per])].astype(np.int64))
                    attn = (ids != tok.pad_id).long()
                    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + idx)
                    inputs, labels = mask_tokens(ids, attn, tok, g, cfg.mask_prob, cfg.span_max)
                    yield inputs, attn, labels
                    idx += 1

        return _prefetch(gen())

    return batches


def train_batches(cfg: PretrainConfig, tok: ZhTokenizer):
    """``start -> iterator`` over masked batches, endless (epochs reshuffle with a new seed)."""
    if is_packed(cfg.corpus):
        return packed_batches(cfg, tok)
    per = max(1, cfg.batch_tokens // cfg.max_len)

    def gen_epoch(epoch: int) -> Iterator[list[list[int]]]:
        lines = (ln for ln in interleave_lines(cfg.corpus) if not is_heldout(ln, cfg.heldout_mod))
        seqs = shuffled(pack_sequences(lines, tok, cfg.max_len), 20000, random.Random(cfg.seed * 1000 + epoch))
        while True:
            b = list(itertools.islice(seqs, per))
            if not b:
                return
            yield b

    def batches(start: int) -> Iterator:
        idx = 0
        for epoch in itertools.count():
            for seqs in gen_epoch(epoch):
                if idx >= start:
                    ids, attn = pad(seqs, tok.pad_id)
                    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + idx)
                    inputs, labels = mask_tokens(ids, attn, tok, g, cfg.mask_prob, cfg.span_max)
                    yield inputs, attn, labels
                idx += 1

    return batches


def build_model(cfg: PretrainConfig, vocab_size: int, init: bool = True):
    """The masked LM of ``cfg``'s shape; with ``init``, initialised from ``cfg.init_from`` if set
    (``init=False`` when a checkpoint's weights are loaded next: the source may be gone)."""
    from transformers import BertConfig, BertForMaskedLM

    conf = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=4 * cfg.hidden,
        max_position_embeddings=cfg.max_len,
        pad_token_id=0,
    )
    torch.manual_seed(cfg.seed)
    model = BertForMaskedLM(conf)
    if init and cfg.init_from:
        grow_from(model, cfg.init_from, cfg.grow)
    return model


STAGES_FILE = "earlier_stages.json"


def earlier_stages(src: str | Path) -> list[dict]:
    """The pretraining history of an ``--init-from`` model (oldest first): its own earlier stages
    (its ``earlier_stages.json``) and its ``pretrain_info.json`` with the held-out evaluations of
    its ``log.jsonl``; empty for a folder that zhtools did not pretrain. A run started from it keeps
    this list in its own ``earlier_stages.json`` (shipped along; read by the model card)."""
    src = Path(src)
    if not (src / "pretrain_info.json").exists():
        return []
    info = json.loads((src / "pretrain_info.json").read_text())
    stages = json.loads((src / STAGES_FILE).read_text()) if (src / STAGES_FILE).exists() else []
    log_path = src / "log.jsonl"
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    info["evals"] = [e for e in map(json.loads, lines) if "eval" in e and not e.get("final")]
    info["source"] = str(src)
    return [*stages, info]


def layer_map(src_layers: int, dst_layers: int, mode: str = "stack") -> list[int]:
    """Source layer for each target layer when growing an encoder's depth.

    ``stack`` repeats the whole stack (progressive stacking, Gong et al. 2019: 0 1 2 3 0 1 2 3);
    ``interleave`` repeats each layer in place (0 0 1 1 2 2 3 3). Shrinking keeps the first
    ``dst_layers`` layers.
    """
    if mode == "stack":
        return [i % src_layers for i in range(dst_layers)]
    if mode == "interleave":
        return [i * src_layers // dst_layers for i in range(dst_layers)]
    raise ValueError(f"grow must be 'stack' or 'interleave', not {mode!r}")


def grow_from(model: torch.nn.Module, src: str | Path, mode: str = "stack") -> list[int]:
    """Initialise a BERT masked LM from a pretrained one of the same width (any depth):
    embeddings and MLM head copied, encoder layers mapped by :func:`layer_map`."""
    from transformers import AutoModelForMaskedLM

    source = AutoModelForMaskedLM.from_pretrained(str(src), dtype=torch.float32)
    sc, dc = source.config, model.config
    for key in ("hidden_size", "num_attention_heads", "intermediate_size", "vocab_size"):
        if getattr(sc, key) != getattr(dc, key):
            raise ValueError(f"--init-from {src}: {key} is {getattr(sc, key)}, the new model has {getattr(dc, key)}")
    if sc.max_position_embeddings < dc.max_position_embeddings:
        raise ValueError(f"--init-from {src}: only {sc.max_position_embeddings} positions, need {dc.max_position_embeddings}")
    mapping = layer_map(sc.num_hidden_layers, dc.num_hidden_layers, mode)
    src_state = source.state_dict()
    new_state = {}
    for key, value in model.state_dict().items():
        name = key
        if ".encoder.layer." in key:
            head, rest = key.split(".encoder.layer.", 1)
            i, tail = rest.split(".", 1)
            name = f"{head}.encoder.layer.{mapping[int(i)]}.{tail}"
        if name not in src_state:
            raise ValueError(f"--init-from {src}: no weight {name}")
        v = src_state[name]
        new_state[key] = v[: value.shape[0]] if key.endswith("position_embeddings.weight") else v
    model.load_state_dict(new_state)
    return mapping


def pretrain(cfg: PretrainConfig, resume: bool = False) -> dict:
    """Train (or resume) and export a plain HF masked-LM folder to ``cfg.out``."""
    t0 = time.time()
    tok, vinfo = make_tokenizer(cfg)
    resuming = resume and (Path(cfg.out) / "checkpoint").exists()
    model = MaskedLMOnly(build_model(cfg, tok.vocab_size, init=not resuming))
    if dist_info()[0] == 0:
        (Path(cfg.out) / "pretrain_config.json").write_text(json.dumps(cfg.__dict__, indent=1))
        if cfg.init_from and not (Path(cfg.out) / STAGES_FILE).exists():
            (Path(cfg.out) / STAGES_FILE).write_text(json.dumps(earlier_stages(cfg.init_from), indent=1))
    held = heldout_sequences(cfg, tok)
    device = None

    def eval_fn(m):
        return evaluate_mlm(m, held, tok, cfg, next(m.parameters()).device)

    def export(m, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        m.mlm.save_pretrained(str(out), safe_serialization=True)
        tok.save_pretrained(out)

    tcfg = TrainConfig(
        out=cfg.out, steps=cfg.steps, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup=cfg.warmup,
        grad_accum=cfg.grad_accum, lookahead=cfg.lookahead, eval_every=cfg.eval_every,
        save_every=cfg.save_every, seed=cfg.seed, bf16=cfg.bf16, progress=cfg.progress,
        max_minutes=cfg.max_minutes, best_metric="mlm_acc",
    )
    trainer = Trainer(model, tcfg, mlm_loss, train_batches(cfg, tok), eval_fn=eval_fn,
                      export_fn=export, device=device)
    res = trainer.fit(resume=resume)
    if trainer.is_main:
        info_path = Path(cfg.out) / "pretrain_info.json"
        prev = json.loads(info_path.read_text()) if info_path.exists() and resume else {}
        seq_tokens = cfg.max_len * max(1, cfg.batch_tokens // cfg.max_len)
        info = {
            "config": {k: v for k, v in cfg.__dict__.items()},
            "vocab": vinfo,
            "parameters": sum(p.numel() for p in model.mlm.parameters()),
            "steps": trainer.step,
            "tokens_seen_upper_bound": trainer.step * cfg.grad_accum * seq_tokens,
            "wall_seconds_total": prev.get("wall_seconds_total", 0.0) + (time.time() - t0),
            "runs": prev.get("runs", 0) + 1,
            "last_eval": res["eval"],
            "device": str(trainer.device),
            "world_size": trainer.world,
        }
        info_path.write_text(json.dumps(info, indent=1, ensure_ascii=False))
    return res


def export_checkpoint(run_dir: str | Path, dest: str | Path) -> Path:
    """Export the latest checkpoint of a (possibly running) pretraining run as a HF folder."""
    from zhtools.train.checkpoint import load_checkpoint

    run_dir, dest = Path(run_dir), Path(dest)
    cfg = PretrainConfig(**json.loads((run_dir / "pretrain_config.json").read_text()))
    tok = ZhTokenizer.from_pretrained(run_dir)
    st = load_checkpoint(run_dir / "checkpoint")
    if st is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir}")
    model = MaskedLMOnly(build_model(cfg, tok.vocab_size, init=False))
    model.load_state_dict(st["model"])
    dest.mkdir(parents=True, exist_ok=True)
    model.mlm.save_pretrained(str(dest), safe_serialization=True)
    tok.save_pretrained(dest)
    (dest / "checkpoint_step.txt").write_text(str(st["step"]))
    return dest


def evaluate_run(run_dir: str | Path) -> dict:
    """Held-out MLM evaluation of a run's exported model (same slice and masking seed as
    during training); appends it to ``log.jsonl`` and ``pretrain_info.json`` as the final eval.
    Used when a run stopped on its time cap before its scheduled final evaluation."""
    from transformers import AutoModelForMaskedLM

    run_dir = Path(run_dir)
    cfg = PretrainConfig(**json.loads((run_dir / "pretrain_config.json").read_text()))
    tok = ZhTokenizer.from_pretrained(run_dir)
    model = MaskedLMOnly(AutoModelForMaskedLM.from_pretrained(str(run_dir))).eval()
    held = heldout_sequences(cfg, tok)
    with torch.inference_mode():
        metrics = evaluate_mlm(model, held, tok, cfg, torch.device("cpu"))
    info_path = run_dir / "pretrain_info.json"
    info = json.loads(info_path.read_text())
    info["last_eval"] = metrics
    info_path.write_text(json.dumps(info, indent=1, ensure_ascii=False))
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": info["steps"], "eval": metrics, "final": True}) + "\n")
    return metrics


def corpus_files(paths: Sequence[str]) -> list[str]:
    """Expand folders into their .txt / .txt.gz files (sorted)."""
    out: list[str] = []
    for p in paths:
        pp = Path(p)
        if pp.is_dir():
            out += sorted(str(f) for f in pp.iterdir() if f.name.endswith((".txt", ".txt.gz")))
        elif pp.exists():
            out.append(str(pp))
        else:
            raise FileNotFoundError(f"corpus file not found: {p}")
    if not out:
        raise FileNotFoundError("no corpus files given")
    return out


__all__ = ["PretrainConfig", "pretrain", "grow_from", "layer_map", "corpus_files", "mask_tokens", "MaskedLMOnly",
           "interleave_lines", "pack_sequences", "iter_lines", "pack_corpus"]
