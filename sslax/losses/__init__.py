"""Pure loss functions: jax.numpy only, no Flax, no state."""
from sslax.losses.contrastive import info_nce_loss, l2_normalize, nt_xent_loss
from sslax.losses.distillation import byol_loss, simsiam_loss
from sslax.losses.redundancy import barlow_twins_loss, vicreg_loss

__all__ = ["barlow_twins_loss", "byol_loss", "info_nce_loss", "l2_normalize", "nt_xent_loss",
           "simsiam_loss", "vicreg_loss"]
