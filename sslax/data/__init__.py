"""Sources (TFDS by name, local folders, embedded), grain pipelines, host -> global arrays."""
from sslax.data.audio import audio_folder_sources, decode_wav
from sslax.data.modality import Audio, Captions, Combined, Images, Labels, Modality, TokenRows
from sslax.data.pipeline import data_sharding, eval_batches, pad_rows, to_global, train_dataset
from sslax.data.sources import ArraySource, digits_arrays, get_source, image_folder_sources, tfds_source
from sslax.data.text import text_file_sources

__all__ = ["ArraySource", "Audio", "Captions", "Combined", "Images", "Labels", "Modality", "TokenRows", "audio_folder_sources",
           "data_sharding", "decode_wav", "digits_arrays", "eval_batches", "get_source", "image_folder_sources",
           "pad_rows", "text_file_sources", "tfds_source", "to_global", "train_dataset"]
