"""Data sets over torchvision (never downloaded) and the paper's reduced-data protocols."""

from dada.data._errors import DatasetNotFoundError
from dada.data.class_lists import load_class_list, shipped_class_lists
from dada.data.datasets import (
    DATASETS,
    DatasetSpec,
    LabeledImages,
    default_root,
    get_spec,
    list_datasets,
    load_images,
)
from dada.data.fashion_mnist import FASHION_MNIST_DIR, read_fashion_mnist
from dada.data.folders import decode_images, load_image_folder
from dada.data.splits import reduced_imagenet_indices, reduced_indices, search_split

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DIR",
    "DatasetNotFoundError",
    "DatasetSpec",
    "LabeledImages",
    "decode_images",
    "default_root",
    "get_spec",
    "list_datasets",
    "load_class_list",
    "load_image_folder",
    "load_images",
    "read_fashion_mnist",
    "reduced_imagenet_indices",
    "reduced_indices",
    "search_split",
    "shipped_class_lists",
]
