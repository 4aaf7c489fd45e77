#!/usr/bin/env bash
# PixelCNN at the `cpu` budget on Fashion-MNIST and CIFAR-10: held-out bits/dim beside uniform 8 bits
# and the training set's per-sub-pixel marginal, samples (runs/pixelcnn/<data>/samples.png), and the
# probes of its features against the same network at random init: the PixelCNN section of
# experiments/RESULTS.md.
#   bash experiments/run_pixelcnn.sh
set -euo pipefail
for d in fashion_mnist cifar10; do
  sslax eval --random_init --config "experiments/pixelcnn_${d}.py:cpu" --no_progress \
    --output "runs/pixelcnn/random_init_${d}.json"
  sslax train --config "experiments/pixelcnn_${d}.py:cpu" --workdir "runs/pixelcnn/${d}" --no_progress
done
python experiments/pixelcnn_table.py runs/pixelcnn
