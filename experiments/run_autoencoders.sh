#!/usr/bin/env bash
# The denoising autoencoder and the context encoder at the shared `cpu` budget on CIFAR-10, and
# fine-tuning on 1,000 labels per class from each and from the same ResNet at random init: the
# autoencoder rows of experiments/RESULTS.md ("Masked and generative image models").
#   bash experiments/run_autoencoders.sh
set -euo pipefail
for m in denoising_ae context_encoder; do
  sslax train --config "experiments/${m}_cifar10.py:cpu" --workdir "runs/table/${m}" --no_progress
  sslax finetune --config "experiments/${m}_cifar10.py:cpu" --workdir "runs/table/${m}" --no_progress \
    --finetune_dir "runs/table/${m}/finetune" --output "runs/table/${m}/finetune.json"
done
sslax eval --random_init --config experiments/context_encoder_cifar10.py:cpu --output runs/table/random_init_ae.json
sslax finetune --random_init --config experiments/denoising_ae_cifar10.py:cpu --no_progress \
  --finetune_dir runs/table/resnet_scratch_finetune --output runs/table/resnet_scratch_finetune.json
