#!/usr/bin/env bash
# CLIP, ALIGN and SigLIP on Flickr8k at the `cpu` budget, the LiT variants, and the random-init
# baselines of the same towers: every image-text figure of experiments/RESULTS.md (needs the
# [text] extra).
#   bash experiments/run_image_text.sh [runs/lit]
# The LiT variants start from runs/lit/simclr and runs/lit/bert_sst2 (image_text_common.py);
# they are trained here first when missing.
set -euo pipefail
DIR=${1:-runs/lit}
mkdir -p "$DIR"
[ -d runs/lit/simclr/checkpoints ] || sslax train --config experiments/simclr_cifar10.py:cpu --workdir runs/lit/simclr --no_progress
[ -d runs/lit/bert_sst2/checkpoints ] || sslax train --config experiments/bert_text.py:cpu --workdir runs/lit/bert_sst2 \
  --set train.knn_every=0 --no_progress
# a run keeps its trained tokenizer in the data cache: the lit variant reads BERT's from the run folder
python -c "import shutil; from sslax.config import load_config; from sslax.data.tokenize import tokenizer_cache_path
shutil.copy(tokenizer_cache_path(load_config('experiments/bert_text.py:cpu').data), 'runs/lit/bert_sst2/tokenizer.json')"
for variant in cpu align_cpu lit lit_image; do
  sslax train --config "experiments/clip_flickr8k.py:$variant" --workdir "$DIR/clip_$variant" --no_progress > /dev/null
done
sslax train --config experiments/siglip_flickr8k.py:cpu --workdir "$DIR/siglip_cpu" --no_progress > /dev/null
# untrained towers: the wordpiece-on-captions ones (cpu) and the SST-2 tokenizer ones (lit)
sslax eval --config experiments/clip_flickr8k.py:cpu --random_init --output "$DIR/random_cpu.json" > /dev/null
sslax eval --config experiments/clip_flickr8k.py:lit --random_init --output "$DIR/random_lit.json" > /dev/null
python experiments/image_text_table.py "$DIR"
