"""Image discovery, reading, preprocessing and datasets."""

from .datasets import EpochBatchSampler, UnalignedDataset, build_unaligned, sample_generator, training_folders
from .files import IMAGE_EXTENSIONS, ImageReadError, find_images, read_image
from .transforms import PREPROCESS, Preprocess, to_float, to_uint8

__all__ = [
    "EpochBatchSampler",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "PREPROCESS",
    "Preprocess",
    "UnalignedDataset",
    "build_unaligned",
    "find_images",
    "read_image",
    "sample_generator",
    "to_float",
    "to_uint8",
    "training_folders",
]
