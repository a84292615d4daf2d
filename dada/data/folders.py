"""Data sets stored as one folder of images per class (ImageNet, or your own), read by torchvision's ImageFolder.

They stay on disk for evaluation (``load_image_folder``). The search holds its reduced set in memory, so it
decodes just those images once, resized and centre-cropped to one side (``decode_images``). An image that
cannot be decoded, or holds more pixels than PIL's decompression-bomb limit, raises `CorruptDataError` naming the
file (``open_image``); 16-bit grayscale images are scaled to 8 bits. A label is a class folder's position in the
sorted names, so the validation split must hold the training split's class folders, no more and no fewer.
"""

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import datasets
from torchvision.transforms import InterpolationMode, v2
from tqdm import tqdm

from dada.data._errors import CorruptDataError, missing_paths_error
from dada.data.datasets import LabeledImages, get_spec

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I")  # PIL's modes of a 16-bit grayscale PNG


def _as_rgb(image: Image.Image) -> Image.Image:
    """RGB at 8 bits per channel; 16-bit grayscale is scaled (value / 257) where PIL's conversion would clip it."""
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(image, dtype=np.float64) / 257
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    return image.convert("RGB")


def open_image(path: str) -> Image.Image:
    """The image at ``path`` as RGB; an unreadable file, or one above PIL's pixel limit, raises naming it."""
    try:
        with open(path, "rb") as file, Image.open(file) as image:
            return _as_rgb(image)
    except (OSError, Image.DecompressionBombError) as error:  # unidentified, truncated, unreadable, or a bomb
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
    if not train:
        _check_same_classes(folder, root / spec.train_paths[0])
    images = datasets.ImageFolder(folder, transform=transform, loader=open_image)
    if num_classes is not None and len(images.classes) != num_classes:
        raise ValueError(
            f"dataset.num_classes={num_classes}, but {folder} holds {len(images.classes)} class "
            f"folders; set dataset.num_classes={len(images.classes)}"
        )
    return images


def _class_names(folder: Path) -> set[str]:
    return set(datasets.folder.find_classes(str(folder))[0])


def _check_same_classes(val_folder: Path, train_folder: Path) -> None:
    """Refuse a validation split whose class folders differ from the training split's: labels are positions in
    the sorted names, so one missing or extra class would shift every label after it."""
    if not train_folder.is_dir():
        return
    train_classes, val_classes = (
        set(datasets.folder.find_classes(str(path))[0]) for path in (train_folder, val_folder)
    )
    if train_classes != val_classes:
        missing, extra = sorted(train_classes - val_classes), sorted(val_classes - train_classes)
        raise ValueError(
            f"the class folders of {val_folder} differ from those of {train_folder}: missing {missing[:10] or 'none'}, "
            f"extra {extra[:10] or 'none'} ({len(missing)} missing, {len(extra)} extra). A label is the "
            f"class's position in the sorted names, so both splits need the same class folders: make them match"
        )


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
