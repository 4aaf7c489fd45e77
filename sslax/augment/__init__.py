"""On-device, key-driven augmentations."""
from sslax.augment.image import (augment_batch, augment_image, color_jitter, eval_transform,
                                 gaussian_blur, horizontal_flip, normalize, random_grayscale,
                                 random_resized_crop, solarize, to_float)

__all__ = ["augment_batch", "augment_image", "color_jitter", "eval_transform", "gaussian_blur",
           "horizontal_flip", "normalize", "random_grayscale", "random_resized_crop", "solarize",
           "to_float"]
