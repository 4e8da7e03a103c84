#!/usr/bin/env bash
# Quickstart: a noisy synthetic dataset, two strategies, the paper's report, three questions in SQL.
#   examples/quickstart/run.sh [OUT]        (N=2000 EPOCHS=8 by default; smaller for a quick look)
set -euo pipefail
OUT=${1:-quickstart}
N=${N:-2000}
EPOCHS=${EPOCHS:-8}
LEDGER=$OUT/ledger

# 1. A dataset: N train pairs of 32 px scenes, 40 % with another pair's caption (the noise DISSect
#    is about), N/4 clean test pairs; the ground truth is kept in the manifest's is_noisy column.
dissect make-synthetic "$OUT/data" --n "$N" --test-n $((N / 4)) --noise-ratio 0.4 --noise-type shuffle

# 2. Two runs into one ledger: every sample's CLIPScore, history, delta, loss and pick, every epoch.
dissect train "$OUT/data" --strategy full --epochs "$EPOCHS" --ledger "$LEDGER" --run full --cache --workers 0 --quiet
dissect train "$OUT/data" --strategy dissect-warmup --ratio 0.3 --epochs "$EPOCHS" --warmup-epochs $((EPOCHS / 2)) \
    --ledger "$LEDGER" --run dissect --cache --workers 0 --quiet

# 3. The paper's figures and tables from the ledger (index.html links them all).
dissect report --all --ledger "$LEDGER" --run dissect --out "$OUT/report" --quiet

# 4. Three questions asked of the ledger.
echo "Q1. The share of clean pairs among each run's picks, per epoch: DISSect's is the line that"
echo "    should rise above the data's 60 % once the warm-up ends, if delta separates clean from noisy."
dissect query --ledger "$LEDGER" --format csv "
    SELECT s.run, s.epoch, round(tp_accuracy(s.selected, NOT m.is_noisy), 3) AS clean_share_of_picks
    FROM scores s JOIN runs r ON r.name = s.run JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    GROUP BY ALL ORDER BY s.run, s.epoch"

echo "Q2. Mean delta (history minus current CLIPScore) of clean and noisy pairs at the last epoch:"
echo "    the pairs the model is memorising have the larger delta."
dissect query --ledger "$LEDGER" --format csv "
    SELECT m.is_noisy, round(avg(s.delta), 3) AS mean_delta, count(s.delta) AS n
    FROM scores s JOIN runs r ON r.name = s.run JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE s.run = 'dissect' AND s.epoch = (SELECT max(epoch) FROM scores WHERE run = 'dissect')
    GROUP BY ALL ORDER BY ALL"

echo "Q3. Each run's final R@Sum (the paper's: IR@1 + IR@10 + TR@1 + TR@10) and the share of the"
echo "    samples it trained on: what the selection bought and what it cost."
dissect query --ledger "$LEDGER" --format csv "
    SELECT f.run, round(f.value, 1) AS rsum4,
           round((SELECT sum(n_selected) / sum(batch_size) FROM steps WHERE run = f.run), 3) AS trained_fraction
    FROM final_metric('rsum4') f ORDER BY f.run"

echo "report: $OUT/report/index.html"
