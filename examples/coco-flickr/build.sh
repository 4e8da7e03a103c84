#!/usr/bin/env bash
# The paper's test sets, COCO 5K and Flickr 1K, from Karpathy's split files and your image folders:
# the test split of each, five captions per image (CLIP_benchmark's retrieval convention).
#   examples/coco-flickr/build.sh KARPATHY_DIR COCO_ROOT FLICKR_IMAGES OUT
# KARPATHY_DIR holds dataset_coco.json and dataset_flickr30k.json; COCO_ROOT holds val2014/
# (the coco file's paths are filepath/filename); FLICKR_IMAGES holds the Flickr30k jpgs.
set -euo pipefail
KARPATHY_DIR=$1
COCO_ROOT=$2
FLICKR_IMAGES=$3
OUT=$4

dissect ingest --karpathy "$KARPATHY_DIR/dataset_coco.json" --images "$COCO_ROOT" --out "$OUT/coco-5k"
dissect ingest --karpathy "$KARPATHY_DIR/dataset_flickr30k.json" --images "$FLICKR_IMAGES" --out "$OUT/flickr-1k"
echo "evaluate on both while training: dissect train DATA --test-data coco=$OUT/coco-5k --test-data flickr=$OUT/flickr-1k"
echo "or a checkpoint: dissect eval --ckpt CKPT --model M --data $OUT/coco-5k"
