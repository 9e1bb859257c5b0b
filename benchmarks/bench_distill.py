"""Theseus distillation, logit adjustment and Lookahead on Chinese classification (3 seeds).

For each dataset and seed, all in one process:
  teacher     the shipped encoder (L layers) fine-tuned (CE, AdamW)
  direct-k    the encoder's first k = L/2 layers fine-tuned directly
  theseus-c   Theseus from the teacher, constant p = 0.5 then successor fine-tuning
  theseus-l   Theseus from the teacher, linear curriculum p = min(1, slope*t + 0.3)
  teacher-la  (--la) teacher with logit-adjusted CE (tau = 1); the CE teacher with post-hoc
              adjustment (tau = 1) is scored from the same logits as the CE teacher
  teacher-lookahead (--lookahead) teacher with Lookahead(AdamW, k=5, alpha=0.5)
Every model is selected by dev accuracy (best epoch) and scored on the test split. Throughput
(inference sentences/s, teacher vs successor) is measured side by side in the same run.
Finished runs are cached under runs/bench_distill/ so an interrupted benchmark resumes.

    python benchmarks/bench_distill.py --dataset chnsenticorp
    python benchmarks/bench_distill.py --dataset smp2020-usual --la
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED, require, write  # noqa: E402

DATASETS = {
    "chnsenticorp": SHARED / "cls_chnsenticorp",
    "smp2020-usual": SHARED / "cls_smp2020_ewect" / "usual",
}


def score_test(folder: Path, test, posthoc_tau: float = 0.0) -> dict[str, float]:
    from zhtools.distill.classify import Classifier, evaluate_logits

    clf = Classifier(folder)
    logits = clf.logits(test.texts)
    res = evaluate_logits(logits, test.labels, clf.labels)
    if posthoc_tau:
        adj = evaluate_logits(logits, test.labels, clf.labels, clf.log_prior, posthoc_tau)
        res.update({f"posthoc_{k}": v for k, v in adj.items()})
    return res


def score_tuned_posthoc(folder: Path, dev, test) -> dict[str, float]:
    """Post-hoc adjustment with tau tuned on the dev split (best dev balanced accuracy), scored on
    test: the same search ``zhtools finetune`` now stores for ``--posthoc-tau auto``."""
    from zhtools.distill.classify import Classifier, evaluate_logits
    from zhtools.train.losses import tune_posthoc_tau

    clf = Classifier(folder)
    y = torch.tensor([clf.labels.index(lab) for lab in dev.labels])
    tau, bal = tune_posthoc_tau(clf.logits(dev.texts), y, clf.log_prior)
    return {"tau": tau, "dev_balanced_accuracy": bal,
            **evaluate_logits(clf.logits(test.texts), test.labels, clf.labels, clf.log_prior, tau)}


def throughput(folders: dict[str, Path], texts: list[str], reps: int = 3) -> dict[str, float]:
    """Inference sentences/s of each model on the same texts, interleaved repetitions (median)."""
    from zhtools.distill.classify import Classifier

    clfs = {k: Classifier(f) for k, f in folders.items()}
    for c in clfs.values():
        c(texts[:64])  # warm-up
    times: dict[str, list[float]] = {k: [] for k in clfs}
    for _ in range(reps):
        for k, c in clfs.items():
            t = time.perf_counter()
            c(texts)
            times[k].append(time.perf_counter() - t)
    return {k: len(texts) / statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="chnsenticorp")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--distill-epochs", type=float, default=None,
                    help="epochs for the successors (Theseus and the direct baseline); default --epochs")
    ap.add_argument("--schedules", nargs="+", choices=["constant", "linear"], default=["constant", "linear"])
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--distill-lr", type=float, default=1e-4)
    ap.add_argument("--direct-lr", type=float, default=None, help="lr of the direct shallow baseline; default --lr")
    ap.add_argument("--suffix", default="", help="appended to the results file name (e.g. -dlr1e-3)")
    ap.add_argument("--kd-alpha", type=float, default=0.0,
                    help="Theseus with a knowledge-distillation term (weight a, T = 2)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="base encoder (default: shipped)")
    ap.add_argument("--la", action="store_true", help="also train logit-adjusted teachers")
    ap.add_argument("--lookahead", action="store_true", help="also train Lookahead teachers")
    ap.add_argument("--no-theseus", action="store_true")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench_distill"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from zhtools.distill import DistillConfig, FinetuneConfig, distill, finetune, read_tsv
    from zhtools.distill.theseus import encoder_layers, load_classifier

    data = require(DATASETS[args.dataset])
    train, dev, test = (str(data / f"{s}.tsv") for s in ("train", "dev", "test"))
    test_set = read_tsv(test)
    work = Path(args.work) / args.dataset
    cache_path = work / "results.json"
    work.mkdir(parents=True, exist_ok=True)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}

    def cached(key: str, fn):
        if key not in cache:
            t = time.time()
            cache[key] = fn()
            if not cache[key].pop("done", True):  # stopped early (SIGTERM): never cache a partial run
                raise SystemExit(f"{key}: training stopped before its last step; rerun to resume it")
            cache[key]["train_minutes"] = round((time.time() - t) / 60, 2)
            cache_path.write_text(json.dumps(cache, indent=1))
        print(key, cache[key], flush=True)
        return cache[key]

    common = dict(train=train, dev=dev, max_len=args.max_len, epochs=args.epochs, progress=False)

    def ft(name: str, seed: int, **kw) -> dict:
        out = work / f"{name}_s{seed}"

        def run() -> dict:
            r = finetune(FinetuneConfig(model=args.model, out=str(out), seed=seed,
                                        **{**common, "lr": args.lr, **kw}), resume=True)
            return {"dev_best": r["best"], "done": r["done"], **score_test(out / "best", test_set, posthoc_tau=1.0)}

        return cached(f"{name}/{seed}", run)

    for seed in args.seeds:
        ft("teacher", seed)
    L = len(encoder_layers(load_classifier(str(work / "teacher_s0" / "best"))[0]))
    k = L // 2
    # successors trained longer than the teachers get their own names (and cache entries)
    d_ep = args.distill_epochs if args.distill_epochs is not None else args.epochs
    tag = "" if d_ep == args.epochs else f"-e{d_ep:g}"
    d_lr = args.direct_lr or args.lr
    direct = f"direct{k}{tag}" + ("" if d_lr == args.lr else f"-lr{d_lr:g}")
    t_tag = tag + ("" if args.distill_lr == args.lr else f"-lr{args.distill_lr:g}")  # own cache entries
    t_tag += f"-kd{args.kd_alpha:g}" if args.kd_alpha else ""
    theseus = {s: f"theseus-{s}{t_tag}" for s in args.schedules}
    if not args.no_theseus:
        for seed in args.seeds:
            ft(direct, seed, layers=k, epochs=d_ep, lr=d_lr)
            for sched in args.schedules:
                out = work / f"{theseus[sched]}_s{seed}"

                def run(sched=sched, out=out, seed=seed) -> dict:
                    r = distill(DistillConfig(teacher=str(work / f"teacher_s{seed}" / "best"),
                                              out=str(out), layers=k, schedule=sched, seed=seed,
                                              lr=args.distill_lr, kd_alpha=args.kd_alpha,
                                              **{**common, "epochs": d_ep}), resume=True)
                    return {"dev_best": r["best"], "done": r["done"], **score_test(out / "best", test_set)}

                cached(f"{theseus[sched]}/{seed}", run)
    if args.la:
        for seed in args.seeds:
            ft("teacher-la", seed, loss="la", tau=1.0)
        dev_set = read_tsv(dev)
        for seed in args.seeds:
            cached(f"teacher-posthoc-tuned/{seed}",
                   lambda seed=seed: score_tuned_posthoc(work / f"teacher_s{seed}" / "best", dev_set, test_set))
    if args.lookahead:
        for seed in args.seeds:
            ft("teacher-lookahead", seed, lookahead=True)

    speed = {}
    if not args.no_theseus:
        folders = {"teacher": work / "teacher_s0" / "best",
                   "successor": work / f"{theseus[args.schedules[-1]]}_s0" / "best"}
        speed = throughput(folders, test_set.texts)
        speed["ratio"] = speed["successor"] / speed["teacher"]

    def agg(method: str, metric: str) -> tuple[float, float]:
        vals = [cache[f"{method}/{s}"][metric] for s in args.seeds if f"{method}/{s}" in cache]
        if not vals:
            return float("nan"), float("nan")
        return statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0

    methods = [("teacher", f"teacher ({L} layers)", "")]
    if not args.no_theseus:
        ep = f", {d_ep:g} epochs" if tag else ""
        methods += [(direct, f"first {k} layers fine-tuned directly{ep}", "")]
        methods += [(theseus[s], f"Theseus {L}->{k}, " + ("constant p=0.5" if s == "constant" else "linear p") + ep
                     + (f", KD a={args.kd_alpha:g} T=2" if args.kd_alpha else ""), "")
                    for s in args.schedules]
    if args.la:
        methods += [("teacher", "teacher, post-hoc logit adjustment (tau=1)", "posthoc_"),
                    ("teacher-posthoc-tuned", "teacher, post-hoc logit adjustment (tau tuned on dev)", ""),
                    ("teacher-la", "teacher, logit-adjusted loss (tau=1)", "")]
    if args.lookahead:
        methods += [("teacher-lookahead", "teacher, Lookahead(AdamW)", "")]
    rows = []
    for key, label, prefix in methods:
        row = {"method": label}
        for metric in ("accuracy", "macro_f1", "balanced_accuracy"):
            m, s = agg(key, prefix + metric)
            row[metric] = f"{m:.4f} ± {s:.4f}"
        row["train_min/seed"] = round(agg(key, "train_minutes")[0], 1)
        rows.append(row)
    summary = {}
    if not args.no_theseus:
        t_acc = agg("teacher", "accuracy")[0]
        d_acc = agg(direct, "accuracy")[0]
        for s in args.schedules:
            a = agg(theseus[s], "accuracy")[0]
            summary[theseus[s]] = {"share_of_teacher": a / t_acc, "minus_direct_points": 100 * (a - d_acc)}
    if args.la:
        base = agg("teacher", "balanced_accuracy")[0]
        summary["logit_adjustment_points"] = {
            "posthoc": 100 * (agg("teacher", "posthoc_balanced_accuracy")[0] - base),
            "posthoc_tuned": 100 * (agg("teacher-posthoc-tuned", "balanced_accuracy")[0] - base),
            "tuned_taus": [cache[f"teacher-posthoc-tuned/{s}"]["tau"] for s in args.seeds],
            "loss": 100 * (agg("teacher-la", "balanced_accuracy")[0] - base)}
    if args.lookahead:
        summary["lookahead"] = {"accuracy_std": agg("teacher-lookahead", "accuracy")[1],
                                "adamw_accuracy_std": agg("teacher", "accuracy")[1]}
    note = (f"{args.dataset}: test split, mean ± std over seeds {args.seeds}; max_len {args.max_len}, "
            f"{args.epochs} epochs per teacher, {d_ep:g} per successor, lr {args.lr} (distill {args.distill_lr}, "
            f"direct {d_lr}), CPU "
            f"{args.threads} thread(s). Throughput (sentences/s, test set): {json.dumps(speed)}. "
            f"Summary: {json.dumps(summary)}")
    write(f"distill_{args.dataset}{tag}{args.suffix}", {"config": vars(args), "runs": cache, "throughput": speed,
                                      "summary": summary}, rows, note)


if __name__ == "__main__":
    main()
