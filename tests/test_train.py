"""Training loop: exact resume after kill -9, DDP under torchrun (gloo), Lookahead, checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import SAMPLE_TEXT

from zhtools.train.checkpoint import load_checkpoint, save_checkpoint
from zhtools.train.optim import Lookahead

TINY = ["--layers", "1", "--hidden", "32", "--heads", "2", "--max-len", "32", "--batch-tokens", "256",
        "--bf16", "off", "--eval-every", "6", "--threads", "1", "-q"]


def _corpus(tmp: Path) -> str:
    p = tmp / "corpus.txt"
    lines = [SAMPLE_TEXT[k:] + SAMPLE_TEXT[:k] for k in range(0, 80, 3)]
    p.write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    return str(p)


def _pretrain(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "zhtools", "pretrain", *args, *TINY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def _losses(out: Path) -> list[float]:
    st = load_checkpoint(out / "checkpoint")
    return [h["loss"] for h in st["history"]]


def test_resume_after_kill_matches_uninterrupted(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    a = tmp_path / "a"
    p = _pretrain(["--corpus", corpus, "--out", str(a), "--steps", "40", "--save-every", "5"])
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    ref = _losses(a)
    assert len(ref) == 40

    b = tmp_path / "b"
    p = _pretrain(["--corpus", corpus, "--out", str(b), "--steps", "40", "--save-every", "5"])
    deadline = time.time() + 300
    while time.time() < deadline:
        st = b / "checkpoint" / "state.json"
        if st.exists():
            step = json.loads(st.read_text())
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)  # kill -9 mid-run
            break
        time.sleep(0.05)
    p.wait(timeout=60)
    killed_at = load_checkpoint(b / "checkpoint")["step"]
    assert 0 < killed_at < 40, step
    p = _pretrain(["--corpus", corpus, "--out", str(b), "--steps", "40", "--save-every", "5", "--resume"])
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    got = _losses(b)
    assert len(got) == 40
    assert torch.allclose(torch.tensor(got), torch.tensor(ref), rtol=1e-4, atol=1e-5), (killed_at, got, ref)

    from transformers import AutoModelForMaskedLM, AutoTokenizer

    m = AutoModelForMaskedLM.from_pretrained(str(b))
    t = AutoTokenizer.from_pretrained(str(b))
    assert m.config.num_hidden_layers == 1 and t("北京")["input_ids"][0] == t.cls_token_id
    info = json.loads((b / "pretrain_info.json").read_text())
    assert info["steps"] == 40  # the killed run never finished, so it left no info record


def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed")
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "zhtools", "pretrain",
                        "--corpus", _corpus(tmp_path), "--out", str(out), "--steps", "8", "--save-every", "4", *TINY],
                       capture_output=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    info = json.loads((out / "pretrain_info.json").read_text())
    assert info["world_size"] == 2 and info["steps"] == 8
    assert (out / "model.safetensors").exists()


def test_lookahead_hand_computation() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = Lookahead(torch.optim.SGD([w], lr=0.1), k=2, alpha=0.5)
    # gradient of loss = 3w is 3: each fast step subtracts 0.3
    for _ in range(2):
        opt.zero_grad()
        (3 * w).sum().backward()
        opt.step()
    # fast: 1 -> 0.7 -> 0.4; sync: slow = 1 + 0.5 * (0.4 - 1) = 0.7; fast <- slow
    assert torch.allclose(w.detach(), torch.tensor([0.7]))
    opt.zero_grad()
    (3 * w).sum().backward()
    opt.step()  # fast 0.4, no sync yet
    assert torch.allclose(w.detach(), torch.tensor([0.4]))
    with opt.slow_weights():
        assert torch.allclose(w.detach(), torch.tensor([0.7]))
    assert torch.allclose(w.detach(), torch.tensor([0.4]))
    # state round trip keeps slow weights and the counter
    sd = opt.state_dict()
    w2 = torch.nn.Parameter(torch.tensor([0.4]))
    opt2 = Lookahead(torch.optim.SGD([w2], lr=0.1), k=2, alpha=0.5)
    opt2.load_state_dict(sd)
    opt2.zero_grad()
    (3 * w2).sum().backward()
    opt2.step()  # fast 0.1, sync: 0.7 + 0.5 * (0.1 - 0.7) = 0.4
    assert torch.allclose(w2.detach(), torch.tensor([0.4]))


def test_checkpoint_roundtrip_and_interrupted_swap(tmp_path: Path) -> None:
    state = {"a": torch.arange(3), "nested": {"t": (torch.ones(2), 5, "x"), "l": [1.5, None]}, 3: True}
    p = tmp_path / "ckpt"
    save_checkpoint(p, state)
    back = load_checkpoint(p)
    assert torch.equal(back["a"], state["a"]) and back["nested"]["t"][1:] == (5, "x") and back[3] is True
    assert isinstance(back["nested"]["t"], tuple)
    # a crash between the two renames leaves only ckpt.old: loading falls back to it
    save_checkpoint(p, {"v": torch.tensor([2])})
    os.replace(p, tmp_path / "ckpt.old")
    assert load_checkpoint(p)["v"].item() == 2
    # a leftover temp folder from a killed writer is ignored and replaced
    (tmp_path / f"ckpt.tmp-{os.getpid()}").mkdir()
    save_checkpoint(p, {"v": torch.tensor([3])})
    assert load_checkpoint(p)["v"].item() == 3
    assert not list(tmp_path.glob("*.safetensors"))


def test_average_model_states(tmp_path) -> None:
    from zhtools.train.checkpoint import average_model_states, save_checkpoint

    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.5]), "n": torch.tensor([3])}
    b = {"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([1.5]), "n": torch.tensor([7])}
    save_checkpoint(tmp_path / "a", {"model": a, "step": 1})
    save_checkpoint(tmp_path / "b", {"model": b, "step": 2})
    avg = average_model_states([tmp_path / "a", tmp_path / "b"])
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0])) and torch.equal(avg["b"], torch.tensor([1.0]))
    assert torch.equal(avg["n"], torch.tensor([3]))  # integer buffers: the first checkpoint's
    save_checkpoint(tmp_path / "c", {"model": {"w": torch.zeros(2)}})
    with pytest.raises(ValueError):
        average_model_states([tmp_path / "a", tmp_path / "c"])
    with pytest.raises(FileNotFoundError):
        average_model_states([tmp_path / "missing"])


def _toy_regression(noise: float = 0.0):
    """64 random 3-d points with a linear target, and an endless stream of batches of 8 from a
    given batch index (the Trainer's ``batches(start)`` contract)."""
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + noise * torch.randn(64)

    def batches(start: int):
        k = start
        while True:
            i = torch.arange(k * 8, k * 8 + 8) % 64
            yield x[i], y[i]
            k += 1

    return x, y, batches


def test_trainer_average_last_exports_mean_of_last_snapshots(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from zhtools.train.checkpoint import average_model_states
    from zhtools.train.loop import TrainConfig, Trainer

    x, y, batches = _toy_regression(noise=0.1)
    model = torch.nn.Linear(3, 1)

    def loss_fn(m, b):
        return torch.nn.functional.mse_loss(m(b[0]).squeeze(-1), b[1]), {}

    def eval_fn(m):
        return {"neg_mse": -float(torch.nn.functional.mse_loss(m(x).squeeze(-1), y))}

    def export_fn(m, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(out / "w.safetensors"))

    cfg = TrainConfig(out=str(tmp_path / "run"), steps=30, lr=0.05, eval_every=5, save_every=10,
                      progress=False, best_metric="neg_mse", average_last=3)
    tr = Trainer(model, cfg, loss_fn, batches, eval_fn=eval_fn, export_fn=export_fn)
    res = tr.fit()
    snaps = sorted((tmp_path / "run" / "snapshots").glob("step-*"))
    assert [p.name for p in snaps] == ["step-000000020", "step-000000025", "step-000000030"]
    avg = average_model_states(snaps)
    exported = load_file(str(tmp_path / "run" / "averaged" / "w.safetensors"))
    assert all(torch.allclose(exported[k], avg[k]) for k in avg)
    assert not torch.allclose(exported["weight"], model.weight)  # the mean differs from the last weights
    final = load_file(str(tmp_path / "run" / "w.safetensors"))  # trained weights exported, restored
    assert torch.equal(final["weight"], model.weight.detach())
    assert torch.equal(load_checkpoint(snaps[-1])["model"]["weight"], model.weight.detach())
    assert "neg_mse" in res["averaged"]
    log = [json.loads(r) for r in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("averaged" in r for r in log)


def test_grow_from_maps_layers_and_rejects_other_widths(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForMaskedLM

    from zhtools.train.pretrain import grow_from, layer_map

    assert layer_map(4, 8, "stack") == [0, 1, 2, 3, 0, 1, 2, 3]
    assert layer_map(4, 8, "interleave") == [0, 0, 1, 1, 2, 2, 3, 3]
    assert layer_map(4, 2, "stack") == [0, 1]

    def bert(layers: int, hidden: int = 32) -> BertForMaskedLM:
        return BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=hidden, num_hidden_layers=layers,
                                          num_attention_heads=2, intermediate_size=4 * hidden,
                                          max_position_embeddings=64))

    torch.manual_seed(0)
    src = bert(2)
    src.save_pretrained(str(tmp_path / "src"), safe_serialization=True)
    for mode in ("stack", "interleave"):
        dst = bert(4)
        mapping = grow_from(dst, tmp_path / "src", mode)
        assert mapping == layer_map(2, 4, mode)
        for i, j in enumerate(mapping):
            for a, b in zip(dst.bert.encoder.layer[i].parameters(), src.bert.encoder.layer[j].parameters()):
                assert torch.equal(a, b)
        assert torch.equal(dst.bert.embeddings.word_embeddings.weight, src.bert.embeddings.word_embeddings.weight)
        assert torch.equal(dst.cls.predictions.transform.dense.weight, src.cls.predictions.transform.dense.weight)
        ids = torch.tensor([[1, 5, 7, 2]])
        assert not torch.equal(dst(ids).logits, src(ids).logits)  # deeper: a different function
    with pytest.raises(ValueError, match="hidden_size"):
        grow_from(bert(4, hidden=64), tmp_path / "src")


def test_pretrain_init_from_cli_starts_from_the_given_weights(tmp_path: Path) -> None:
    """--init-from with a deeper --layers: the new run's tokenizer and (at lr 0) weights are the
    source's, its layers stacked."""
    from transformers import AutoModelForMaskedLM

    corpus = _corpus(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    p = _pretrain(["--corpus", corpus, "--out", str(a), "--steps", "6"])
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    p = subprocess.Popen([sys.executable, "-m", "zhtools", "pretrain", "--corpus", corpus, "--out", str(b),
                          "--steps", "2", "--lr", "0", "--init-from", str(a), "--layers", "2",
                          *TINY[2:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    assert (b / "tokenizer.json").read_text() == (a / "tokenizer.json").read_text()
    stages = json.loads((b / "earlier_stages.json").read_text())  # history kept for the model card
    assert [(s["steps"], s["config"]["layers"], s["source"]) for s in stages] == [(6, 1, str(a))]
    assert stages[0]["evals"] and all("mlm_acc" in e["eval"] for e in stages[0]["evals"])
    src = AutoModelForMaskedLM.from_pretrained(str(a))
    dst = AutoModelForMaskedLM.from_pretrained(str(b))
    assert dst.config.num_hidden_layers == 2
    for layer in dst.bert.encoder.layer:
        for x, y in zip(layer.parameters(), src.bert.encoder.layer[0].parameters()):
            assert torch.equal(x, y)


def test_sigterm_stops_with_checkpoint_reports_interrupted_and_resume_finishes(tmp_path: Path) -> None:
    """A SIGTERM mid-run stops at the end of the current step, saves a checkpoint and returns
    ``done=False, interrupted=True`` (the training CLIs then exit 143); resuming finishes the run
    with the same weights as an uninterrupted one."""
    from zhtools.cli_commands import exit_status
    from zhtools.train.loop import TrainConfig, Trainer

    _x, _y, batches = _toy_regression()

    def run(out: Path, kill_at: int | None, resume: bool = False) -> tuple[dict, torch.nn.Module]:
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1)
        calls = [0]

        def loss_fn(m, b):
            calls[0] += 1
            if kill_at is not None and calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from outside
            return torch.nn.functional.mse_loss(m(b[0]).squeeze(-1), b[1]), {}

        cfg = TrainConfig(out=str(out), steps=20, lr=0.05, save_every=100, progress=False)
        return Trainer(model, cfg, loss_fn, batches).fit(resume=resume), model

    ref, ref_model = run(tmp_path / "ref", None)
    assert ref["done"] and not ref["interrupted"] and exit_status(ref) == 0
    res, _ = run(tmp_path / "b", kill_at=7)
    assert res["step"] == 7 and not res["done"] and res["interrupted"] and exit_status(res) == 143
    assert load_checkpoint(tmp_path / "b" / "checkpoint")["step"] == 7
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    res, model = run(tmp_path / "b", None, resume=True)
    assert res["done"] and res["step"] == 20 and not res["interrupted"]
    assert torch.allclose(model.weight, ref_model.weight, atol=1e-6)


def test_packed_corpus_matches_streaming_and_resumes_exactly(tmp_path: Path) -> None:
    from zhtools.train.pretrain import (
        PretrainConfig,
        heldout_sequences,
        make_tokenizer,
        pack_corpus,
        train_batches,
    )

    corpus = _corpus(tmp_path)
    # a few held-out lines (CRC32 % 7 == 0) so both paths have something to hold out
    cfg = PretrainConfig(corpus=[corpus], out=str(tmp_path / "tok"), max_len=32, batch_tokens=128,
                         heldout_mod=7, heldout_seqs=50)
    stats = pack_corpus(cfg, tmp_path / "c.npz")
    tok, _ = make_tokenizer(cfg)
    stream_held = heldout_sequences(cfg, tok)
    packed = PretrainConfig(**{**cfg.__dict__, "corpus": [str(tmp_path / "c.npz")]})
    assert stream_held and heldout_sequences(packed, tok) == stream_held
    assert stats["heldout_sequences"] == len(stream_held)
    # the packed rows hold exactly the streamed training tokens
    from zhtools.train.pretrain import interleave_lines, is_heldout, pack_sequences

    lines = (ln for ln in interleave_lines([corpus]) if not is_heldout(ln, 7))
    assert stats["train_tokens"] == sum(len(s) for s in pack_sequences(lines, tok, 32))
    # resume at any micro-batch index (across epoch boundaries) gives the same batches
    batches = train_batches(packed, tok)
    per_epoch = stats["train_sequences"] // (128 // 32)
    ref = [b for _, b in zip(range(2 * per_epoch + 3), batches(0))]
    for start in (1, per_epoch - 1, per_epoch + 2):
        again = [b for _, b in zip(range(3), batches(start))]
        for x, y in zip(again, ref[start : start + 3]):
            assert all(torch.equal(u, v) for u, v in zip(x, y))
    # an epoch is a permutation: every training row appears once
    rows = torch.cat([b[1].sum(1) for b in ref[:per_epoch]])
    assert len(rows) == per_epoch * 4 and int(rows.sum()) <= stats["train_tokens"]


def test_pretrain_on_packed_corpus_cli(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    npz = tmp_path / "c.npz"
    p = _pretrain(["--corpus", corpus, "--out", str(tmp_path / "tok"), "--pack", str(npz)])
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    p = _pretrain(["--corpus", str(npz), "--out", str(tmp_path / "fresh"), "--steps", "8"])
    assert p.wait(timeout=300) != 0  # no tokenizer to read the ids with: a clear error
    assert b"holds token ids" in p.stderr.read()
    out = tmp_path / "tok"  # the --pack output folder holds the tokenizer
    p = _pretrain(["--corpus", str(npz), "--out", str(out), "--steps", "8"])
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    assert len(_losses(out)) == 8
