"""The search's data (paper section 4.2): the reduced training set in memory, split into search-train and
search-val. What `dada.search.SearchRun` reads; analyses and benchmarks read it the same way."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from dada.data.class_lists import load_class_list
from dada.data.datasets import LabeledImages, get_spec, load_images
from dada.data.folders import decode_images, load_image_folder
from dada.data.splits import reduced_imagenet_indices, reduced_indices, search_split


@dataclass
class SearchData:
    train_images: torch.Tensor  # uint8 [N,3,H,W], on the device
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor


def _check_size(dataset: DictConfig, size: int, available: int) -> None:
    """Refuse a reduced set larger than the training images, naming the key (a scale may have set it)."""
    if size > available:
        raise ValueError(
            f"dataset.search_images={size} asks for more images than the {available} that {dataset.name}'s "
            f"training set holds (under {dataset.root}); set dataset.search_images={available} or fewer"
        )


def reduced_set(dataset: DictConfig, size: int, class_list: str | None = None) -> LabeledImages:
    """The reduced training set of section 4.2, in memory: ``size`` images, stratified and seeded.

    An image folder keeps ``dataset.search_classes`` classes when set (reduced ImageNet: 120): those of
    ``class_list`` (``search.class_list``), else random ones; renumbered from 0, and only the chosen images are
    decoded, at ``dataset.image_size``.
    """
    seed = dataset.search_split_seed
    if get_spec(dataset.name).in_memory:
        full = load_images(dataset.name, dataset.root, train=True)
        _check_size(dataset, size, len(full.labels))
        return full.subset(reduced_indices(full.labels, size, seed=seed))
    folder = load_image_folder(dataset.name, dataset.root, train=True, num_classes=dataset.num_classes)
    targets = torch.tensor(folder.targets)
    # The ImageNet pipeline crops at run time: keep a centre square at the validation resize (see FIDELITY.md).
    decode_size = dataset.search_pipeline.val_resize if dataset.search_pipeline else dataset.image_size
    if dataset.search_classes:
        classes = load_class_list(class_list) if class_list else None  # null: random classes, seeded
        indices, label_map = reduced_imagenet_indices(targets, dataset.search_classes, size, seed, classes)
        return decode_images(folder, indices, decode_size, label_map)
    _check_size(dataset, size, len(targets))
    return decode_images(folder, reduced_indices(targets, size, seed=seed), decode_size)


def prepare_search_data(dataset: DictConfig, device: torch.device, class_list: str | None = None) -> SearchData:
    """The reduced training set (``dataset.search_images``; ``class_list``: see `reduced_set`), split and stratified
    into search-train and search-val (section 4.1: 50/50), on ``device``."""
    reduced = reduced_set(dataset, dataset.search_images, class_list)
    train_index, val_index = search_split(
        reduced.labels, train_fraction=dataset.search_train_fraction, seed=dataset.search_split_seed
    )
    images, labels = reduced.images, reduced.labels
    return SearchData(
        images[train_index].to(device),
        labels[train_index].to(device),
        images[val_index].to(device),
        labels[val_index].to(device),
    )
