#!/usr/bin/env bash
# The paper's CC3M run: fetch CC3M, train RN50 with DISSect-Warmup under torchrun with the
# authors' recipe, evaluate on COCO 5K and Flickr 1K every epoch, and write the report.
#
#   URLS=cc3m.tsv COCO=coco-5k FLICKR=flickr-1k GPUS=8 ORACLE=RN50-openai.pt ORACLE_MODEL=RN50 \
#       examples/cc3m/run.sh OUT
#
# URLS: CC3M's URL list with a header line `caption<TAB>url` (Google's Train_GCC-training.tsv has
# none: add it); COCO, FLICKR: test sets from examples/coco-flickr/build.sh; ORACLE, ORACLE_MODEL:
# a CLIP trained elsewhere, for the clean split of Fig. 3-4 (step 3; without it those figures are
# not drawn, and the script says so).
# Recipe (../shared/reference/METHOD-NOTES.md): RN50 from scratch, 224 px, batch 1024 per GPU on 8
# GPUs, lr 2e-3, 10k warm-up steps, AMP, AdamW, cosine schedule, 40 epochs, r = 0.3, T_w = 10.
#
#   SMOKE=1 examples/cc3m/run.sh OUT
# runs the same script end to end on a stand-in: four dozen generated images served by a loopback
# web server, Karpathy-format test sets built from a few of them, dissect-tiny at 32 px on 2 CPU
# processes (gloo), 2 epochs, its oracle a model trained on two dozen other pairs of the stand-in.
set -euo pipefail
OUT=${1:-cc3m}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ ${SMOKE:-0} == 1 ]]; then
    python3 - "$OUT/stand-in" <<'PY'
import json, random, sys
from pathlib import Path
from PIL import Image
root = Path(sys.argv[1]); (root / "site").mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
colours = ["red", "green", "blue", "yellow", "cyan", "magenta"]
rows, entries = ["caption\turl"], []
for i in range(48):
    colour = colours[i % len(colours)]
    Image.new("RGB", (48, 48), colour).save(root / "site" / f"{i:03d}.png")
    rows.append(f"a {colour} square number {i}\tURL/{i:03d}.png")
    if i < 12:
        entries.append({"filename": f"{i:03d}.png", "split": "test",
                        "sentences": [{"raw": f"a {colour} picture {j}"} for j in range(5)]})
    elif i < 36:   # the oracle's own training pairs: an image folder with .txt captions
        (root / "oracle").mkdir(exist_ok=True)
        Image.new("RGB", (48, 48), colour).save(root / "oracle" / f"{i:03d}.png")
        (root / "oracle" / f"{i:03d}.txt").write_text(f"something {colour}")
(root / "urls.tsv").write_text("\n".join(rows) + "\n")
(root / "karpathy.json").write_text(json.dumps({"images": entries}))
PY
    port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$OUT/stand-in/site" >/dev/null 2>&1 &
    server=$!
    trap 'kill $server' EXIT
    for _ in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/000.png')" 2>/dev/null && break; sleep 0.1; done
    sed -i "s#URL/#http://127.0.0.1:$port/#" "$OUT/stand-in/urls.tsv"
    dissect ingest --karpathy "$OUT/stand-in/karpathy.json" --images "$OUT/stand-in/site" --out "$OUT/coco" --quiet
    dissect ingest --karpathy "$OUT/stand-in/karpathy.json" --images "$OUT/stand-in/site" --out "$OUT/flickr" --quiet
    URLS=$OUT/stand-in/urls.tsv COCO=$OUT/coco FLICKR=$OUT/flickr GPUS=2
    RECIPE=(--model dissect-tiny --batch-size 8 --lr 1e-3 --warmup-steps 2 --epochs 2 --warmup-epochs 1
            --precision fp32 --device cpu --workers 0)
    FETCH=(--image-size 32 --processes 1 --threads 4 --timeout 5)
else
    : "${URLS:?give URLS=cc3m.tsv}" "${COCO:?give COCO=coco-5k}" "${FLICKR:?give FLICKR=flickr-1k}"
    GPUS=${GPUS:-8}
    RECIPE=(--model RN50 --batch-size 1024 --lr 2e-3 --warmup-steps 10000 --epochs 40 --warmup-epochs 10
            --precision amp --workers 8)
    FETCH=(--image-size 256 --processes 16 --threads 64)
fi

# 1. Download with img2dataset and ingest (failed downloads counted in the dataset's skipped list).
dissect fetch "$URLS" --out "$OUT/cc3m" "${FETCH[@]}" --quiet

# 2. Train: one process per GPU; rank 0 writes the run record, every rank its scores. The paper
#    compares with random selection at the same ratio and with full data (STRATEGIES to change).
for strategy in ${STRATEGIES:-dissect-warmup random full}; do
    torchrun --standalone --nproc_per_node "$GPUS" -m dissect.cli -- train "$OUT/cc3m" \
        --strategy "$strategy" --ratio 0.3 "${RECIPE[@]}" \
        --test-data coco="$COCO" --test-data flickr="$FLICKR" \
        --ledger "$OUT/ledger" --run "$strategy" --quiet
done

# 3. CC3M has no ground truth: as in the paper, a CLIP trained elsewhere scores every pair and its
#    top half of CLIPScore is the clean split of Fig. 3-4 (and Fig. 4a's view of the picks).
#    ORACLE: that model's checkpoint or open_clip pretrained file, ORACLE_MODEL: its open_clip
#    model name (e.g. ORACLE=RN50-openai.pt ORACLE_MODEL=RN50). Never the run's own full-data
#    checkpoint: that would split the data by the very model whose scores the figures plot.
if [[ ${SMOKE:-0} == 1 && -z ${ORACLE:-} ]]; then
    # the stand-in's oracle: a model trained on other data (its own pairs, other captions)
    dissect train "$OUT/stand-in/oracle" --strategy full "${RECIPE[@]}" --ledger "$OUT/oracle-ledger" --run oracle --quiet
    ORACLE=$OUT/oracle-ledger/checkpoints/oracle/checkpoint.pt ORACLE_MODEL=${RECIPE[1]}
fi
REPORT_ORACLE=()
if [[ -n ${ORACLE:-} ]]; then
    : "${ORACLE_MODEL:?give ORACLE_MODEL=the open_clip model name of ORACLE}"
    dissect score "$OUT/cc3m/dataset" --ckpt "$ORACLE" --model "$ORACLE_MODEL" --name oracle \
        --ledger "$OUT/ledger" --replace --quiet
    REPORT_ORACLE=(--oracle oracle)
else
    echo "no ORACLE: figures 3a, 3b, 3c, 4b, 4c and 4d need a clean/noisy split, which CC3M has only through an" \
         "oracle, and are not drawn; figure 4a shows the run's own CLIPScore. Give ORACLE=CHECKPOINT" \
         "ORACLE_MODEL=NAME (a CLIP trained elsewhere) to draw them." >&2
fi

# 4. The paper's figures and tables from the ledger.
dissect report --all --ledger "$OUT/ledger" --run dissect-warmup "${REPORT_ORACLE[@]}" --out "$OUT/report" --quiet
dissect report --table 1 --ledger "$OUT/ledger" --run dissect-warmup
