"""Pure loss functions: jax.numpy only, no Flax, no state."""
from sslax.losses.blockwise import blockwise_logsumexp
from sslax.losses.clustering import sinkhorn_knopp, swav_loss
from sslax.losses.contrastive import clip_loss, info_nce_loss, l2_normalize, moco_loss, moco_v3_loss, nt_xent_loss
from sslax.losses.dino import dino_center_update, dino_loss, teacher_temperature_schedule
from sslax.losses.distillation import byol_loss, simsiam_loss
from sslax.losses.redundancy import barlow_twins_loss, vicreg_loss
from sslax.losses.triplet import triplet_loss

__all__ = ["barlow_twins_loss", "blockwise_logsumexp", "byol_loss", "clip_loss", "dino_center_update", "dino_loss", "info_nce_loss", "l2_normalize",
           "moco_loss", "moco_v3_loss", "nt_xent_loss", "simsiam_loss", "sinkhorn_knopp", "swav_loss", "teacher_temperature_schedule", "triplet_loss",
           "vicreg_loss"]
