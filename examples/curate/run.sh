#!/usr/bin/env bash
# Curate, then train: rank a dataset's pairs by a full run's history (no oracle), keep the top
# half, train on it, and compare with a random half of the same size.
#   examples/curate/run.sh [OUT]        (N=2000 EPOCHS=8 by default)
set -euo pipefail
OUT=${1:-curate}
N=${N:-2000}
EPOCHS=${EPOCHS:-8}
LEDGER=$OUT/ledger
TRAIN=(--epochs "$EPOCHS" --ledger "$LEDGER" --cache --workers 0 --quiet)

dissect make-synthetic "$OUT/data" --n "$N" --test-n $((N / 4)) --noise-ratio 0.4 --noise-type shuffle

# 1. One full-data run: its ledger holds every pair's CLIPScore at every epoch.
dissect train "$OUT/data" --strategy full --run full "${TRAIN[@]}"

# 2. Two subsets of half the train pairs: by mean centred CLIPScore over the run's epochs, and at random.
dissect curate --ledger "$LEDGER" --by mean-clipscore --run full --keep 0.5 --out "$OUT/mean-clipscore.parquet" --overwrite
dissect curate --ledger "$LEDGER" --by random --keep 0.5 --out "$OUT/random.parquet" --overwrite

# 3. Train on each (any strategy takes --subset; full trains on every kept pair).
dissect train "$OUT/data" --strategy full --subset "$OUT/mean-clipscore.parquet" --run on-mean-clipscore "${TRAIN[@]}"
dissect train "$OUT/data" --strategy full --subset "$OUT/random.parquet" --run on-random "${TRAIN[@]}"

# 4. What each subset kept (clean share, ground truth) and what training on it gave (R@Sum).
dissect query --ledger "$LEDGER" --format csv "
    SELECT f.run, coalesce(r.subset->>'rule', 'all pairs') AS trained_on, (r.subset->>'n')::INTEGER AS pairs,
           round(f.value, 1) AS rsum4
    FROM final_metric('rsum4') f JOIN runs r ON r.name = f.run
    ORDER BY f.run"
