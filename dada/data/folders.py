"""Data sets stored as one folder of images per class (ImageNet, or your own), read by torchvision's ImageFolder.

They stay on disk for evaluation (``load_image_folder``). The search holds its reduced set in memory, so it
decodes just those images once, resized and centre-cropped to one side (``decode_images``). An image that
cannot be decoded raises `CorruptDataError` naming the file (``open_image``).
"""

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision import datasets
from torchvision.transforms import InterpolationMode, v2
from tqdm import tqdm

from dada.data._errors import CorruptDataError, missing_paths_error
from dada.data.datasets import LabeledImages, get_spec


def open_image(path: str) -> Image.Image:
    """The image at ``path`` as RGB, read as ImageFolder does; an unreadable file raises naming it."""
    try:
        return datasets.folder.default_loader(path)
    except OSError as error:  # PIL.UnidentifiedImageError, a truncated file, an unreadable one
        raise CorruptDataError(
            f"image {path} cannot be decoded ({type(error).__name__}: {error}). Delete the file "
            f"or replace it with a valid image, then run again."
        ) from error


def load_image_folder(
    name: str, root: str | os.PathLike, train: bool, transform=None, num_classes: int | None = None
) -> datasets.ImageFolder:
    """Folder data set ``name`` (``imagenet``, ``folder``) under ``root``: its train or its validation split.

    ``num_classes``, when given, must be the number of class folders found (the network's head is built for it).
    """
    spec = get_spec(name)
    if spec.in_memory:
        raise ValueError(f"data set {name!r} is not an image folder; load it with load_images")
    root = Path(root)
    spec.require(root, train)
    folder = root / (spec.train_paths if train else spec.test_paths)[0]
    if not any(entry.is_dir() for entry in folder.iterdir()):
        raise missing_paths_error(spec.name, root, [folder / "<class>"], spec.layout)
    images = datasets.ImageFolder(folder, transform=transform, loader=open_image)
    if num_classes is not None and len(images.classes) != num_classes:
        raise ValueError(
            f"dataset.num_classes={num_classes}, but {folder} holds {len(images.classes)} class "
            f"folders; set dataset.num_classes={len(images.classes)}"
        )
    return images


def decode_images(
    folder: datasets.ImageFolder, indices: Tensor, image_size: int, label_map: Mapping[int, int] | None = None
) -> LabeledImages:
    """The images of ``folder`` at ``indices`` as uint8 [N, 3, S, S]: shorter side resized to S, centre crop.

    ``label_map`` renumbers the classes (``reduced_imagenet_indices`` keeps a subset of them); without it the
    folder's own class indices are kept.
    """
    resize = v2.Compose(
        [
            v2.Resize(image_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(image_size),
            v2.PILToTensor(),
        ]
    )
    indices = indices.tolist()
    images = torch.empty(len(indices), 3, image_size, image_size, dtype=torch.uint8)
    for row, index in enumerate(tqdm(indices, desc=f"decode {Path(folder.root).name}", leave=False)):
        path, _ = folder.samples[index]
        images[row] = resize(folder.loader(path))
    targets = [folder.targets[index] for index in indices]
    if label_map is not None:
        targets = [label_map[target] for target in targets]
    num_classes = len(label_map) if label_map is not None else len(folder.classes)
    return LabeledImages(images, torch.tensor(targets, dtype=torch.long), num_classes, Path(folder.root).name)
