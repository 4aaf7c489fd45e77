"""Pure loss functions: jax.numpy only, no Flax, no state."""
from sslax.losses.contrastive import info_nce_loss, l2_normalize, nt_xent_loss

__all__ = ["info_nce_loss", "l2_normalize", "nt_xent_loss"]
