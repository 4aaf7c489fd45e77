#!/usr/bin/env bash
# wav2vec 2.0 on the Free Spoken Digit Dataset, every figure of its RESULTS.md section:
#   bash experiments/run_wav2vec2_fsdd.sh [runs/wav2vec2_fsdd]
# pretrain (cpu budget) -> probes (digit, speaker) against random init and MFCC ->
# fine-tuning on one recording per digit per speaker, pretrained against from scratch.
set -euo pipefail
DIR=${1:-runs/wav2vec2_fsdd}
CONFIG=experiments/wav2vec2_fsdd.py:cpu
mkdir -p "$DIR"
sslax train --config $CONFIG --workdir "$DIR/pretrain" --no_progress
sslax eval --config $CONFIG --random_init --output "$DIR/random_init.json" > /dev/null
sslax finetune --config $CONFIG --workdir "$DIR/pretrain" --output "$DIR/finetune_pretrained.json" > /dev/null
sslax finetune --config $CONFIG --random_init --output "$DIR/finetune_scratch.json" > /dev/null
python experiments/fsdd_mfcc_baseline.py --config $CONFIG --output "$DIR/mfcc.json" > /dev/null
python experiments/wav2vec2_fsdd_table.py "$DIR"
