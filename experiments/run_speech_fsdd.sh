#!/usr/bin/env bash
# The frame-level speech methods on the Free Spoken Digit Dataset, every figure of the RESULTS.md
# section "Speech methods on spoken digits":
#   bash experiments/run_speech_fsdd.sh [runs/speech_fsdd] [methods...]
# per method: pretrain (cpu budget) -> probes (digit, speaker; last layer, every layer, SUPERB's
# weighted sum) -> the same probes of the same network at random init; then the table, with the
# MFCC baseline (needs the [audio] extra). wav2vec 2.0 is listed for its weighted-layer probe.
# hubert_iteration2 clusters a layer of $DIR/hubert (iteration 1), so it runs after hubert;
# cpc_speaker is CPC with same-speaker negatives; triplet trains speaker embeddings
# (experiments/triplet_fsdd.py), reported with speaker recall@1 and EER.
set -euo pipefail
DIR=${1:-runs/speech_fsdd}
shift || true
METHODS=${*:-mockingjay tera apc hubert hubert_iteration2 cpc cpc_speaker temporal_distance wavenet wav2vec2 triplet}
mkdir -p "$DIR"
for m in $METHODS; do
  CONFIG=experiments/${m}_fsdd.py:cpu
  SET=()
  if [ "$m" = hubert_iteration2 ]; then
    CONFIG=experiments/hubert_fsdd.py:iteration2_cpu
    SET=(--set "train.init_from=(('method_state/teacher', '$DIR/hubert', ''),)")
  elif [ "$m" = cpc_speaker ]; then
    CONFIG=experiments/cpc_fsdd.py:cpu
    SET=(--set "method.negatives='speaker'")
  fi
  sslax train --config "$CONFIG" "${SET[@]}" --workdir "$DIR/$m" --no_progress
  sslax eval --config "$CONFIG" "${SET[@]}" --random_init --output "$DIR/${m}_random_init.json" > /dev/null
done
[ -f "$DIR/mfcc.json" ] || python experiments/fsdd_mfcc_baseline.py --output "$DIR/mfcc.json" > /dev/null
python experiments/speech_fsdd_table.py "$DIR"
