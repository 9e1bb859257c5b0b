#!/usr/bin/env bash
# Reproduce every benchmark in benchmarks/results/ (needs ../shared/data and the shipped model).
# Usage: benchmarks/run_all.sh [SNAPSHOT_DIR]   (optional earlier checkpoint for the F1-vs-encoder curve)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -n "${SKIP_BATCHING:-}" ] || $PY benchmarks/bench_batching.py
$PY benchmarks/bench_pretrain.py   # add --compare NAME=DIR to score an earlier encoder on the same held-out masks
$PY benchmarks/bench_probe.py --threads 1
$PY benchmarks/bench_segment.py --no-last --no-random   # full PKU test: all rules/signals, jieba (drop --no-last for last-layer rows)
$PY benchmarks/bench_segment.py --random-only --name segment_random   # random-init twin of the same shape
$PY benchmarks/bench_segment_layers.py   # label-free layer choice vs People's Daily dev F1
$PY benchmarks/bench_segment_ud.py --bf16   # second standard/domain: UD GSDSimp test words
$PY benchmarks/bench_segment_ud.py --bf16 --treebank gsd   # the same sentences in traditional script
$PY benchmarks/bench_tagger.py --name segment_tagger9   # shipped self-trained tagger vs the default segmenter
$PY benchmarks/bench_segment.py --lines 300 --name segment_vs_random  # shipped vs random init, same shape
if [ -n "${1:-}" ]; then
  $PY benchmarks/bench_segment.py --lines 300 --no-random --model "$1" --name segment_checkpoint
fi
$PY benchmarks/bench_parse.py --sentences 150
$PY benchmarks/bench_parse_layers.py   # Eisner UAS per layer on GSDSimp dev (layer choice)
$PY benchmarks/exp_segment_band.py --width 3   # distance-2/3 crossing impacts as a segmentation signal (PFR dev)
$PY benchmarks/bench_parse.py --sentences 150 --treebank gsd
# distillation with the shipped 8-layer encoder: teacher 8 layers, successors 4 (session 12)
$PY benchmarks/bench_distill.py --dataset chnsenticorp --epochs 3 --lr 3e-4 --distill-lr 1e-3 --direct-lr 1e-3 --schedules linear constant --work runs/bench_distill8 --suffix=-enc8
$PY benchmarks/bench_distill.py --dataset smp2020-usual --epochs 1 --lr 3e-4 --distill-lr 1e-3 --direct-lr 1e-3 --schedules linear constant --la --lookahead --work runs/bench_distill8 --suffix=-enc8
# distillation, logit adjustment, Lookahead (3 seeds each; ~4 CPU-hours in all on one thread);
# the files below were measured with the 4-layer step-10,000 encoder (teacher 4, successors 2):
# reproduce them with --model pointing at data/models/zhtools-char-small as of commit 59279c4 (git worktree)
$PY benchmarks/bench_distill.py --dataset chnsenticorp --lookahead --epochs 3 --lr 3e-4 --distill-lr 3e-4
$PY benchmarks/bench_distill.py --dataset chnsenticorp --epochs 3 --distill-epochs 5 --schedules linear --lr 3e-4 --distill-lr 3e-4
# successor lr 1e-3 (chosen on seed-0 dev) for Theseus and the direct baseline alike
$PY benchmarks/bench_distill.py --dataset chnsenticorp --epochs 3 --lr 3e-4 --distill-lr 1e-3 --direct-lr 1e-3 --schedules linear --suffix=-lr1e-3
for a in 0.5 0.2; do   # Theseus + knowledge distillation (KD weight a, T = 2), same teachers and lr
  $PY benchmarks/bench_distill.py --dataset chnsenticorp --epochs 3 --lr 3e-4 --distill-lr 1e-3 --direct-lr 1e-3 --schedules linear --kd-alpha $a --suffix=-lr1e-3-kd$a
done
$PY benchmarks/bench_distill.py --dataset smp2020-usual --la --epochs 1 --lr 3e-4 --distill-lr 3e-4
$PY benchmarks/bench_distill.py --dataset smp2020-usual --epochs 1 --lr 3e-4 --distill-lr 1e-3 --direct-lr 1e-3 --schedules linear --suffix=-lr1e-3
# summarizer (needs the trained run folder; the shipped fp16 copy also works as --model)
# (summarize_csl.md holds the session-6 model's run; summarize_csl_e26k.md the session-8 model's against it;
#  summarize_csl_e26k14.md compared the shipped model, then in runs/summ/e26k14/best, with the session-8 model:
#  --compare shipped-8ep=<that folder from git history>)
$PY benchmarks/bench_summarize.py --model data/models/zhtools-summarizer-csl --no-repeat-ngram 2 --threads 1 --name summarize_csl_avg20-24
$PY benchmarks/bench_summarize_script.py --threads 1   # traditional-script input (OpenCC s2t proxy)
