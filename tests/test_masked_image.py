"""MAE and SimMIM: masks, the visible-patch encoder, the losses against their formulas in NumPy."""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from helpers import method_digits_config
from sslax.augment.patch_masks import block_patch_mask, num_visible, random_patch_mask
from sslax.losses.masked_image import mae_loss, normalized_pixel_targets, patchify, simmim_loss, unpatchify
from sslax.methods import make_method
from sslax.models.vit import ViT, sincos_pos_embed


def _vit(**kw):
  return ViT(image_size=8, patch_size=2, dim=16, depth=2, num_heads=2, in_channels=3, rngs=nnx.Rngs(0), **kw)


def test_visible_patch_gather_equals_the_dense_masked_encoder():
  # MAE's encoder on the gathered visible patches == the full sequence with attention restricted
  # to the visible patches (and the class token): per-token layers see the same inputs, attention
  # the same keys
  model = _vit()
  images = jax.random.normal(jax.random.PRNGKey(1), (4, 8, 8, 3))
  keep, _, mask = random_patch_mask(jax.random.PRNGKey(2), 4, 16, 0.75)
  tokens = model.embed(images)
  cls_g, gathered = model.encode_tokens(jnp.take_along_axis(tokens, keep[..., None], axis=1))
  cls_d, dense = model.encode_tokens(tokens, mask=mask == 0)
  dense_visible = jnp.take_along_axis(dense["tokens"][:, 1:], keep[..., None], axis=1)
  np.testing.assert_allclose(np.asarray(gathered["tokens"][:, 1:]), np.asarray(dense_visible), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(cls_g), np.asarray(cls_d), rtol=1e-5, atol=1e-5)
  # and the unmasked forward is the old one: embed + encode_tokens
  np.testing.assert_allclose(np.asarray(model(images)[0]), np.asarray(model.encode_tokens(tokens)[0]), rtol=1e-6)


def test_random_masks_have_the_ratio_and_are_independent_per_image():
  n, b = 64, 4096
  keep, restore, mask = (np.asarray(x) for x in random_patch_mask(jax.random.PRNGKey(0), b, n, 0.75))
  k = num_visible(n, 0.75)
  assert keep.shape == (b, k) and (mask.sum(1) == n - k).all()
  assert all(len(set(row)) == k for row in keep[:50])
  assert (np.take_along_axis(mask, keep, 1) == 0).all()  # the kept patches are the unmasked ones
  # restore puts [visible..., masked...] back in raster order
  order = np.argsort(restore, axis=1)
  assert (order[:, :k] == keep).all()
  # every position is masked 75% of the time, and two images' masks are uncorrelated
  assert np.abs(mask.mean(0) - 0.75).max() < 0.04
  agree = (mask[0::2] == mask[1::2]).mean()
  assert abs(agree - (0.75**2 + 0.25**2)) < 0.01
  # one key, one mask; another key, another
  again = np.asarray(random_patch_mask(jax.random.PRNGKey(0), b, n, 0.75)[2])
  other = np.asarray(random_patch_mask(jax.random.PRNGKey(1), b, n, 0.75)[2])
  assert (again == mask).all() and (other != mask).any()


def test_simmim_masks_cover_whole_cells():
  m = np.asarray(block_patch_mask(jax.random.PRNGKey(0), 256, 8, 2, 0.6)).reshape(256, 4, 2, 4, 2)
  cells = m.transpose(0, 1, 3, 2, 4).reshape(256, 16, 4)
  assert ((cells == 0) | (cells == 1)).all() and (cells.min(-1) == cells.max(-1)).all()  # all-or-nothing
  assert (cells[..., 0].sum(1) == math.ceil(16 * 0.6)).all()
  assert np.abs(cells[..., 0].mean(0) - 10 / 16).max() < 0.12


def test_patchify_is_the_reference_layout():
  # facebookresearch/mae `patchify` on NCHW: reshape (N, C, h, p, w, q), einsum 'nchpwq->nhwpqc'
  x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
  nchw = x.transpose(0, 3, 1, 2)
  ref = nchw.reshape(2, 3, 4, 2, 4, 2)
  ref = np.einsum("nchpwq->nhwpqc", ref).reshape(2, 16, 2 * 2 * 3)
  np.testing.assert_array_equal(np.asarray(patchify(x, 2)), ref)
  np.testing.assert_array_equal(np.asarray(unpatchify(patchify(x, 2), 2, 4)), x)


def test_mae_loss_is_the_normalized_pixel_mse_written_out():
  rng = np.random.default_rng(0)
  pred = rng.normal(size=(3, 16, 12)).astype(np.float32)
  patches = rng.normal(size=(3, 16, 12)).astype(np.float32) * 2 + 1
  mask = (rng.random((3, 16)) < 0.75).astype(np.float32)
  # forward_loss: target = (t - mean) / (var + 1e-6) ** .5 (torch's var: unbiased), per-patch mean
  # squared error, (loss * mask).sum() / mask.sum()
  mean = patches.mean(-1, keepdims=True)
  var = patches.var(-1, keepdims=True, ddof=1)
  target = (patches - mean) / (var + 1e-6) ** 0.5
  per_patch = ((pred - target) ** 2).mean(-1)
  expected = (per_patch * mask).sum() / mask.sum()
  np.testing.assert_allclose(float(mae_loss(pred, patches, mask)), expected, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(normalized_pixel_targets(patches)), target, rtol=1e-5, atol=1e-5)
  plain = (((pred - patches) ** 2).mean(-1) * mask).sum() / mask.sum()
  np.testing.assert_allclose(float(mae_loss(pred, patches, mask, norm_pix=False)), plain, rtol=1e-5)


def test_simmim_loss_is_the_masked_l1_written_out():
  # SimMIM.forward in pixel space (NCHW): the patch mask repeated up to pixels, l1 per element,
  # (l1 * mask).sum() / (mask.sum() + 1e-5) / in_chans
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
  x_rec = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
  mask = (rng.random((2, 4, 4)) < 0.5).astype(np.float32)
  pixel_mask = mask.repeat(2, 1).repeat(2, 2)[:, None]  # [B, 1, H, W]
  l1 = np.abs(x.transpose(0, 3, 1, 2) - x_rec.transpose(0, 3, 1, 2))
  expected = (l1 * pixel_mask).sum() / (pixel_mask.sum() + 1e-5) / 3
  got = simmim_loss(patchify(x_rec, 2), patchify(x, 2), mask.reshape(2, 16), channels=3)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_sincos_positions_are_maes_table():
  table = sincos_pos_embed(16, 4)
  omega = 1.0 / 10000 ** (np.arange(4) / 4.0)
  row, col = 2, 3  # patch (row 2, column 3) is token 1 + 2 * 4 + 3
  expected = np.concatenate([np.sin(col * omega), np.cos(col * omega), np.sin(row * omega), np.cos(row * omega)])
  np.testing.assert_allclose(table[1 + row * 4 + col], expected, rtol=1e-6, atol=1e-7)
  assert (table[0] == 0).all()
  model = _vit(pos_embed="sincos")
  np.testing.assert_allclose(np.asarray(model.pos_embed[...])[0], sincos_pos_embed(16, 4))


@pytest.mark.parametrize("name,override,message", [
    ("mae", {"method.mask_ratio": 1.0}, "method.mask_ratio: expected a number in (0, 1), got 1.0"),
    ("mae", {"model.name": "resnet_tiny"}, "model.name: expected a ViT (one of ['vit_tiny', 'vit_small', 'vit_base']), "
                                           "got 'resnet_tiny'"),
    ("mae", {"method.decoder_heads": 3}, "method.decoder_heads: expected a positive divisor of method.decoder_dim, got 3"),
    ("simmim", {"method.mask_patch_size": 3}, "method.mask_patch_size: expected a multiple of model.patch_size (2) "
                                              "that divides model.image_size (8), got 3"),
    ("simmim", {"augment.crop_size": (6, 6)}, "augment.crop_size: expected the model's input size (8, 8)"),
])
def test_masked_image_config_errors_name_the_key(name, override, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    make_method(method_digits_config(name, **override))


def test_mae_masks_the_ratio_in_the_step_and_draws_a_reconstruction(tmp_path):
  from sslax.eval.reconstruction import reconstruction_grid

  config = method_digits_config("mae")
  method = make_method(config)
  model = method.build_model(nnx.Rngs(0))
  images = (np.random.default_rng(0).random((4, 8, 8, 1)) * 255).astype(np.uint8)
  loss, aux, _ = method.loss(model, {"image": images}, {}, jax.random.PRNGKey(0), 0)
  assert np.isfinite(float(loss)) and float(aux["mask_ratio"]) == 0.75
  rows = method.reconstruct(model, {"image": images}, jax.random.PRNGKey(0))
  assert set(rows) == {"input", "masked", "reconstruction"} and rows["input"].shape == (4, 8, 8, 1)
  # visible patches are pasted in: the reconstruction equals the input outside the mask
  shown = np.asarray(rows["masked"]) != 0.5
  np.testing.assert_allclose(np.asarray(rows["reconstruction"])[shown], np.asarray(rows["input"])[shown], atol=1e-5)
  np.testing.assert_allclose(np.asarray(rows["input"]), images / 255.0, atol=1e-5)
  reconstruction_grid({k: np.asarray(v) for k, v in rows.items()}, str(tmp_path / "r.png"))
  assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_context_encoder_loss_weights_the_overlap_band():
  # pathak22/context-encoder: wtl2Matrix filled with overlapL2Weight (10), its interior
  # [overlap, size - overlap) with 1, then mean((fake - real_center)^2 * wtl2Matrix)
  from sslax.losses.masked_image import center_box, context_encoder_loss

  rng = np.random.default_rng(2)
  pred, true = rng.normal(size=(2, 2, 6, 6, 3)).astype(np.float32)
  weight = np.full((6, 6), 10.0)
  weight[1:5, 1:5] = 1.0
  expected = (((pred - true) ** 2) * weight[None, :, :, None]).mean()
  np.testing.assert_allclose(float(context_encoder_loss(pred, true, overlap=1)), expected, rtol=1e-5)
  plain = ((pred - true) ** 2).mean()
  np.testing.assert_allclose(float(context_encoder_loss(pred, true, overlap=0)), plain, rtol=1e-5)
  assert center_box(32) == (8, 24) and center_box(32, 1) == (9, 23)


def test_denoising_loss_and_corruptions_written_out():
  from sslax.augment.corrupt import center_hole, gaussian_noise, masking_noise
  from sslax.losses.masked_image import denoising_loss

  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(2, 4, 8, 8, 3)).astype(np.float32)
  np.testing.assert_allclose(float(denoising_loss(x, y)), ((x - y) ** 2).mean(), rtol=1e-5)
  big = np.ones((64, 16, 16, 3), np.float32)
  masked = np.asarray(masking_noise(jax.random.PRNGKey(0), big, 0.5))
  assert set(np.unique(masked)) == {0.0, 1.0} and abs((masked == 0).mean() - 0.5) < 0.01
  noisy = np.asarray(gaussian_noise(jax.random.PRNGKey(0), big, 0.5)) - 1
  assert abs(noisy.std() - 0.5) < 0.01 and abs(noisy.mean()) < 0.01
  hole = np.asarray(center_hole(big[:2], overlap=1))
  expected = np.ones((16, 16))
  expected[5:11, 5:11] = 0  # the centre 8x8 (4..12) less a 1-pixel band
  assert (hole[..., 0] == expected).all() and (hole[0] == hole[1]).all()


@pytest.mark.parametrize("override,message", [
    ({"method.corruption": "blur"}, "method.corruption: expected one of ['gaussian', 'masking', 'center'], got 'blur'"),
    ({"method.overlap": 2}, "method.overlap: expected an integer in [0, 2) (less than half the centre square), got 2"),
    ({"model.name": "vit_tiny"}, "model.name: expected a ResNet"),
])
def test_autoencoder_config_errors_name_the_key(override, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    make_method(method_digits_config("context_encoder", **override))
