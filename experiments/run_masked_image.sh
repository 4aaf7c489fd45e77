#!/usr/bin/env bash
# MAE and SimMIM at the shared `cpu` budget on CIFAR-10 (ViT-tiny, patch 4), the same ViT at random
# init, and fine-tuning on 1,000 labels per class from each and from scratch: the ViT rows of
# experiments/RESULTS.md ("Every method on CIFAR-10").
#   bash experiments/run_masked_image.sh
set -euo pipefail
for m in mae simmim; do
  sslax train --config "experiments/${m}_cifar10.py:cpu" --workdir "runs/table/${m}" --no_progress
done
sslax eval --random_init --config experiments/mae_cifar10.py:cpu --output runs/table/random_init_vit.json
for m in mae simmim; do
  sslax finetune --config "experiments/${m}_cifar10.py:cpu" --workdir "runs/table/${m}" --no_progress \
    --finetune_dir "runs/table/${m}/finetune" --output "runs/table/${m}/finetune.json"
done
sslax finetune --random_init --config experiments/mae_cifar10.py:cpu --no_progress \
  --finetune_dir runs/table/vit_scratch_finetune --output runs/table/vit_scratch_finetune.json
python experiments/masked_image_table.py runs/table
