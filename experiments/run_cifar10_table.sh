#!/usr/bin/env bash
# Every method's `cpu` budget on CIFAR-10, then the random-init baseline of the same encoder:
# the rows of the self-distillation table in experiments/RESULTS.md.
#   bash experiments/run_cifar10_table.sh [method ...]
set -euo pipefail
methods=("${@:-simclr byol simsiam moco vicreg barlow_twins dino rotation context_encoder}")
for m in ${methods[@]}; do
  sslax train --config "experiments/${m}_cifar10.py:cpu" --workdir "runs/table/${m}" --no_progress
done
sslax eval --random_init --config experiments/simclr_cifar10.py:cpu --output runs/table/random_init.json
python experiments/cifar10_table.py runs/table
