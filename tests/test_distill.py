"""Fine-tuning, BERT-of-Theseus, lazy embedding rows and logit adjustment."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_bert_folder, tiny_tokenizer

from zhtools.distill import (
    Classifier,
    DistillConfig,
    FinetuneConfig,
    Schedule,
    Theseus,
    distill,
    export_successor,
    finetune,
    read_tsv,
)
from zhtools.distill import classify as cls_mod
from zhtools.train.losses import label_log_priors, logit_adjusted_cross_entropy, posthoc_adjust
from zhtools.train.optim import LazyRows

POS = "好大上来"  # all in the tiny test vocabulary (tests/helpers.py)
NEG = "不出后会"
FILLER = "今天我们去公园中国北京的一是了人在他有这个时地为子你说生年着就那和要她也得里自以"


def toy_tsv(path: Path, n: int, seed: int, imbalance: float = 0.5) -> Path:
    """Sentences whose label is decided by one sentiment character among filler."""
    rng = random.Random(seed)
    rows = ["label\ttext_a"]
    for _ in range(n):
        y = 1 if rng.random() < imbalance else 0
        chars = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
        chars.insert(rng.randint(0, len(chars)), rng.choice(POS if y else NEG))
        rows.append(f"{y}\t{''.join(chars)}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def tiny_classifier(tmp: Path, layers: int = 4, dropout: float = 0.1, kind: str = "bert") -> Path:
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    from zhtools.models import save_model

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    common = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=layers,
                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=66,
                  pad_token_id=tok.pad_id, num_labels=2, hidden_dropout_prob=dropout,
                  attention_probs_dropout_prob=dropout, id2label={0: "0", 1: "1"},
                  label2id={"0": 0, "1": 1})
    if kind == "bert":
        model = BertForSequenceClassification(BertConfig(**common))
    else:
        model = RobertaForSequenceClassification(RobertaConfig(**common))
    out = tmp / f"cls-{kind}-{layers}"
    save_model(model, tok, out)
    return out


def _load(path: Path):
    from zhtools.distill.theseus import load_classifier

    return load_classifier(str(path))


# ----------------------------------------------------------------------------- data
def test_read_tsv_header_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "a.tsv"
    p.write_text("text_a\tlabel\n好看\t1\n\n难看\t0\n", encoding="utf-8")
    d = read_tsv(p)
    assert d.texts == ["好看", "难看"] and d.labels == ["1", "0"]
    p.write_text("1\t好看\n0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        read_tsv(p)
    p.write_bytes(b"1\t\xff\xfe\n")
    with pytest.raises(ValueError, match=":1: invalid UTF-8"):
        read_tsv(p)


# ------------------------------------------------------------------------- Theseus
@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_gate_statistics_are_independent_bernoulli(tmp_path: Path, kind: str) -> None:
    model, _ = _load(tiny_classifier(tmp_path, kind=kind))
    th = Theseus(model, k=2, replace_embeddings=True)
    p, n = 0.3, 4000
    draws = torch.tensor([th.sample(p, i) for i in range(n)], dtype=torch.float)
    assert draws.shape == (n, 3)  # embeddings + 2 layer modules
    assert torch.allclose(draws.mean(0), torch.full((3,), p), atol=0.03)
    # independence: modules disagree about 2p(1-p) of the time (an all-or-nothing gate never does)
    disagree = (draws[:, 1] != draws[:, 2]).float().mean().item()
    assert abs(disagree - 2 * p * (1 - p)) < 0.04
    assert th.sample(1.0, 7) == [True] * 3 and th.sample(0.0, 7) == [False] * 3


def test_p1_equals_successor_and_export_reloads_identically(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model, tok = _load(tiny_classifier(tmp_path, dropout=0.0))
    th = Theseus(model, k=2, init="even")
    x = torch.tensor([tok.with_specials(tok.encode(t).ids) for t in ["今天很好", "北京不坏"]])
    m = torch.ones_like(x)
    succ = export_successor(model)
    assert succ.config.num_hidden_layers == 2
    model.train()
    th.sample(1.0, 0)
    with torch.no_grad():
        train_p1 = model(input_ids=x, attention_mask=m).logits
        model.eval()
        eval_logits = model(input_ids=x, attention_mask=m).logits
        direct = succ(input_ids=x, attention_mask=m).logits
    assert torch.allclose(train_p1, direct, atol=1e-6) and torch.allclose(eval_logits, direct, atol=1e-6)
    # p = 0 in training runs the predecessor: a different function than the successor
    model.train()
    th.sample(0.0, 0)
    with torch.no_grad():
        pred_logits = model(input_ids=x, attention_mask=m).logits
    assert not torch.allclose(pred_logits, direct, atol=1e-4)
    # plain HF reload, no zhtools code
    succ.save_pretrained(tmp_path / "succ")
    back = AutoModelForSequenceClassification.from_pretrained(tmp_path / "succ").eval()
    assert back.config.num_hidden_layers == 2
    with torch.no_grad():
        assert torch.allclose(back(input_ids=x, attention_mask=m).logits, direct, atol=1e-6)


def test_bad_depth_and_init() -> None:
    with pytest.raises(ValueError, match="divide"):
        Theseus(_load_tmp(), k=3)
    with pytest.raises(ValueError, match="init"):
        Theseus(_load_tmp(), k=2, init="middle")


def _load_tmp():
    import tempfile

    return _load(tiny_classifier(Path(tempfile.mkdtemp())))[0]


def test_schedules() -> None:
    c = Schedule("constant", p=0.5, replacing_steps=10)
    assert c(0) == 0.5 and c(9) == 0.5 and c(10) == 1.0
    lin = Schedule("linear", slope=0.1, b=0.3)
    assert lin(0) == 0.3 and math.isclose(lin(3), 0.6) and lin(7) == 1.0 and lin(100) == 1.0
    with pytest.raises(ValueError):
        Schedule("cosine")(0)


def _distill_cfg(tmp_path: Path, teacher: Path, out: str, **kw) -> DistillConfig:
    train = toy_tsv(tmp_path / "train.tsv", 160, 1)
    dev = toy_tsv(tmp_path / "dev.tsv", 40, 2)
    base = dict(teacher=str(teacher), train=str(train), dev=str(dev), out=str(tmp_path / out),
                layers=2, epochs=2, batch_tokens=256, progress=False, lr=1e-3, save_every=3)
    base.update(kw)
    return DistillConfig(**base)


def test_distill_trains_only_successor_and_resume_is_exact(tmp_path: Path, monkeypatch) -> None:
    teacher = tiny_classifier(tmp_path)
    cfg = _distill_cfg(tmp_path, teacher, "full", schedule="linear", replace_embeddings=True)
    res = distill(cfg)
    th = res["theseus"]
    # predecessor (and head) unchanged, successor moved
    frozen_before = _load(teacher)[0].state_dict()
    th_model_state = th.model.state_dict()
    for name, v in frozen_before.items():
        if name.startswith("bert.encoder.layer."):
            i, rest = name.split(".")[3], ".".join(name.split(".")[4:])
            r = th.r
            new = f"bert.encoder.layer.{int(i) // r}.predecessor.{int(i) % r}.{rest}"
            assert torch.equal(th_model_state[new], v), name
        elif name.startswith("bert.embeddings."):
            new = name.replace("bert.embeddings.", "bert.embeddings.predecessor.0.")
            assert torch.equal(th_model_state[new], v), name
        else:
            assert torch.equal(th_model_state[name], v), name
    moved = th_model_state["bert.encoder.layer.0.successor.attention.self.query.weight"]
    assert not torch.equal(moved, frozen_before["bert.encoder.layer.0.attention.self.query.weight"])
    from safetensors.torch import load_file

    want = load_file(Path(cfg.out) / "model.safetensors")

    # crash in the middle (after the step-3 checkpoint), then resume: same final weights
    real = cls_mod.make_loss
    calls = {"n": 0}

    def crashing(*a, **k):  # noqa: ANN002, ANN003, ANN202
        inner = real(*a, **k)

        def fn(m, b):  # noqa: ANN001, ANN202
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
            return inner(m, b)

        return fn

    cfg2 = _distill_cfg(tmp_path, teacher, "resumed", schedule="linear", replace_embeddings=True)
    monkeypatch.setattr(cls_mod, "make_loss", crashing)
    with pytest.raises(KeyboardInterrupt):
        distill(cfg2)
    monkeypatch.setattr(cls_mod, "make_loss", real)
    distill(cfg2, resume=True)
    got = load_file(Path(cfg2.out) / "model.safetensors")
    assert want.keys() == got.keys()
    for k in want:
        assert torch.allclose(want[k], got[k], atol=1e-6), k


def test_tune_head_trains_head_only_in_successor_finetuning(tmp_path: Path) -> None:
    teacher = tiny_classifier(tmp_path)
    before = _load(teacher)[0].state_dict()
    head = ("bert.pooler.dense.weight", "classifier.weight", "classifier.bias")
    # replacement never ends (replace_frac 1): the head stays frozen even with tune_head
    th = distill(_distill_cfg(tmp_path, teacher, "always", replace_frac=1.0, tune_head=True))["theseus"]
    assert {id(p) for p in th.head_parameters()} == {id(p) for p in (th.model.bert.pooler.dense.weight,
                                                                     th.model.bert.pooler.dense.bias,
                                                                     th.model.classifier.weight,
                                                                     th.model.classifier.bias)}
    for n in head:
        assert torch.equal(th.model.state_dict()[n], before[n]), n
    # half replacement, half successor fine-tuning: the head moves, the predecessor does not
    th = distill(_distill_cfg(tmp_path, teacher, "tuned", replace_frac=0.5, tune_head=True))["theseus"]
    st = th.model.state_dict()
    for n in head:
        assert not torch.equal(st[n], before[n]), n
    assert torch.equal(st["bert.encoder.layer.0.predecessor.0.attention.self.query.weight"],
                       before["bert.encoder.layer.0.attention.self.query.weight"])
    assert torch.equal(st["bert.embeddings.word_embeddings.weight"], before["bert.embeddings.word_embeddings.weight"])


def test_kd_targets_are_the_unchanged_predecessor_without_dropout(tmp_path: Path, monkeypatch) -> None:
    teacher = tiny_classifier(tmp_path, dropout=0.1)
    cfg = _distill_cfg(tmp_path, teacher, "kd", schedule="linear", kd_alpha=0.5, kd_temperature=2.0)
    model, tok = _load(teacher)
    model.eval()
    texts = [line.split("\t", 1)[1] for line in Path(cfg.train).read_text(encoding="utf-8").splitlines()[1:]]
    with torch.no_grad():
        want = [torch.log_softmax(model(input_ids=torch.tensor([tok.with_specials(tok.encode(t).ids)])
                                        ).logits[0] / 2.0, -1) for t in texts]
    want = torch.stack(want)
    seen = []
    real = torch.nn.functional.kl_div

    def spy(inp, target, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append(target.detach().clone())
        return real(inp, target, *a, **k)

    monkeypatch.setattr(torch.nn.functional, "kl_div", spy)
    th = distill(cfg)["theseus"]
    assert seen, "the KD term never ran"
    for batch in seen:  # every soft target row is the teacher's own (eval-mode) output on a train text
        d = (batch[:, None, :] - want[None, :, :]).abs().amax(-1).min(-1).values
        assert float(d.max()) < 1e-4
    moved = th.model.state_dict()["bert.encoder.layer.0.successor.attention.self.query.weight"]
    assert not torch.equal(moved, _load(teacher)[0].state_dict()["bert.encoder.layer.0.attention.self.query.weight"])


# ----------------------------------------------------------------------- fine-tuning
def test_finetune_learns_toy_task_and_classifier_cli(tmp_path: Path) -> None:
    tiny_bert_folder(tmp_path / "enc")
    train = toy_tsv(tmp_path / "train.tsv", 400, 1)
    dev = toy_tsv(tmp_path / "dev.tsv", 100, 2)
    res = finetune(FinetuneConfig(model=str(tmp_path / "enc"), train=str(train), dev=str(dev),
                                  out=str(tmp_path / "ft"), epochs=15, lr=5e-3, batch_tokens=512,
                                  progress=False, lookahead=True, lazy_embeddings=True))
    assert res["best"] >= 0.9, res
    clf = Classifier(tmp_path / "ft" / "best")
    d = read_tsv(dev)
    pred = clf(d.texts)
    assert sum(p == g for p, g in zip(pred, d.labels)) / len(d) >= 0.9
    assert clf([]) == []
    # the post-hoc tau tuned on dev is saved with the model; "auto" reads it
    info = json.loads((tmp_path / "ft" / "best" / "zhtools_cls.json").read_text())
    assert 0.0 <= info["posthoc_tau_dev"] <= 3.0 and info["posthoc_tau_dev_balanced_accuracy"] >= 0.9
    assert Classifier(tmp_path / "ft" / "best", posthoc_tau="auto").tau == info["posthoc_tau_dev"]
    with pytest.raises(ValueError):
        Classifier(tmp_path / "ft" / "best", posthoc_tau="best")
    # CLI: one label per input line, empty lines get a label too; eval cls scores it
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(d.texts) + "\n", encoding="utf-8")
    out = tmp_path / "pred.txt"
    r = subprocess.run([sys.executable, "-m", "zhtools", "classify", str(texts), "--model",
                        str(tmp_path / "ft" / "best"), "-o", str(out), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_text().splitlines() == pred
    r = subprocess.run([sys.executable, "-m", "zhtools", "classify", str(texts), "--model",
                        str(tmp_path / "ft" / "best"), "--posthoc-tau", "auto", "-q"], capture_output=True, text=True)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == len(d), r.stderr
    r = subprocess.run([sys.executable, "-m", "zhtools", "classify", str(texts), "--model",
                        str(tmp_path / "ft" / "best"), "--posthoc-tau", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "auto" in r.stderr
    r = subprocess.run([sys.executable, "-m", "zhtools", "eval", "cls", "--gold", str(dev), "--pred",
                        str(out), "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and '"accuracy"' in r.stdout


# -------------------------------------------------------------------- lazy embeddings
def test_lazy_rows_hand_computation() -> None:
    emb = torch.nn.Embedding(3, 2)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.5], [2.0, 0.0]]))
    w0 = emb.weight.detach().clone()
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.999, 1e-8, 0.01
    opt = LazyRows(torch.optim.AdamW([emb.weight], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd),
                   [emb.weight])
    # step 1 uses row 0, step 2 uses rows 0 and 1; row 2 is never in a batch
    for ids in ([0], [0, 1]):
        opt.zero_grad()
        emb(torch.tensor(ids)).sum().backward()
        opt.step()
    w = emb.weight.detach()
    assert torch.equal(w[2], w0[2])  # untouched: no weight decay, no momentum drift
    st = opt.inner.state[emb.weight]
    assert torch.equal(st["exp_avg"][2], torch.zeros(2))

    def adamw(w, grads):  # the textbook AdamW update over the steps where the row had a gradient
        m = v = torch.zeros_like(w)
        for t, g in enumerate(grads, 1):
            w = w * (1 - lr * wd)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            w = w - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        return w, m

    ones = torch.ones(2)
    w_row0, m_row0 = adamw(w0[0], [ones, ones])
    assert torch.allclose(w[0], w_row0, atol=1e-6) and torch.allclose(st["exp_avg"][0], m_row0)
    # row 1 joined at step 2: its moments start from zero but the bias correction uses t = 2,
    # exactly as TF LazyAdam does (the step count is per tensor)
    m1 = (1 - b1) * ones
    v1 = (1 - b2) * ones
    w_row1 = w0[1] * (1 - lr * wd) - lr * (m1 / (1 - b1**2)) / ((v1 / (1 - b2**2)).sqrt() + eps)
    assert torch.allclose(w[1], w_row1, atol=1e-6)


def test_plain_adamw_moves_absent_rows() -> None:
    """The behaviour lazy updates exist to avoid (guards the test above against vacuity)."""
    emb = torch.nn.Embedding(3, 2)
    w0 = emb.weight.detach().clone()
    opt = torch.optim.AdamW([emb.weight], lr=0.1, weight_decay=0.01)
    for ids in ([0], [1]):
        opt.zero_grad()
        emb(torch.tensor(ids)).sum().backward()
        opt.step()
    assert not torch.equal(emb.weight.detach()[0], w0[0] - 0)  # moved at step 1
    assert not torch.equal(emb.weight.detach()[2], w0[2])  # decayed although never used


# -------------------------------------------------------------------- logit adjustment
def test_logit_adjustment_toy_example() -> None:
    log_prior = label_log_priors([0, 0, 0, 1], 2)  # priors 0.75 / 0.25
    assert torch.allclose(log_prior.exp(), torch.tensor([0.75, 0.25]))
    logits = torch.tensor([[1.0, 0.5]])
    y = torch.tensor([1])
    # loss variant: CE on logits + log prior = [1 + ln .75, .5 + ln .25]
    z = torch.tensor([1 + math.log(0.75), 0.5 + math.log(0.25)])
    want = -(z[1] - torch.logsumexp(z, 0))
    assert torch.isclose(logit_adjusted_cross_entropy(logits, y, log_prior, tau=1.0), want)
    # post-hoc: argmax of logits - log prior flips the prediction to the rare class
    adj = posthoc_adjust(logits, log_prior, tau=1.0)
    assert logits.argmax().item() == 0 and adj.argmax().item() == 1
    assert torch.allclose(adj, torch.tensor([[1 - math.log(0.75), 0.5 - math.log(0.25)]]))
    assert torch.equal(posthoc_adjust(logits, log_prior, tau=0.0), logits)


def test_posthoc_tau_tuning_toy_example() -> None:
    """The tuned tau maximises dev balanced accuracy over the grid; ties go to the smaller tau."""
    from zhtools.eval.cls import score_cls
    from zhtools.train.losses import tune_posthoc_tau

    log_prior = torch.log(torch.tensor([0.8, 0.2]))  # log(0.8) = -0.22, log(0.2) = -1.61
    # margins of class 0 over class 1: 0.3 (gold 1), 0.9 (gold 1), 2.0 (gold 0), 1.2 (gold 0)
    logits = torch.tensor([[0.3, 0.0], [0.9, 0.0], [2.0, 0.0], [1.2, 0.0]])
    y = torch.tensor([1, 1, 0, 0])
    assert score_cls(y.tolist(), logits.argmax(-1).tolist())["balanced_accuracy"] == 0.5
    # adjusted margin = m - tau * log(4) (1.386 tau): all four right once 0.9 < 1.386 tau < 1.2
    tau, bal = tune_posthoc_tau(logits, y, log_prior)
    assert bal == 1.0 and tau == 0.7  # 0.7 * 1.386 = 0.97; 0.6 * 1.386 = 0.83 < 0.9
    assert tune_posthoc_tau(logits, y, log_prior, grid=[0.0, 2.0]) == (0.0, 0.5)  # tie -> smaller
    assert tune_posthoc_tau(logits[:0], y[:0], log_prior) == (0.0, 0.0)
