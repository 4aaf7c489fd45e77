"""Sources (TFDS by name, local folders, embedded), grain pipelines, host -> global arrays."""
from sslax.data.pipeline import data_sharding, eval_batches, to_global, train_dataset
from sslax.data.sources import ArraySource, digits_arrays, get_source, image_folder_sources, tfds_source

__all__ = ["ArraySource", "data_sharding", "digits_arrays", "eval_batches", "get_source",
           "image_folder_sources", "tfds_source", "to_global", "train_dataset"]
