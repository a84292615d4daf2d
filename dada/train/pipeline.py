"""The evaluation's data pipeline, in DADA's order: crop+flip, policy, normalise, Cutout (Fast AA's policy:
before crop+flip, ``policy.before_crop``).

Two paths give the same batches. In-memory data sets (all but the image folders) live on the device as
uint8 and are cropped, flipped and augmented there in batched calls when the policy allows (``on_device``);
else a DataLoader runs crop, flip and the policy per image on PIL images in its workers. Image folders
(ImageNet, your own data) are always read by a DataLoader (RandomResizedCrop, flip, policy, ColorJitter when
the recipe asks). Normalisation, ImageNet's PCA lighting and Cutout always run on the device (`Preprocess`).
Under ``torchrun`` every rank takes its own slice of each global batch (`ShardedBatchSampler`) and of the
test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from torchvision.transforms import InterpolationMode, v2

from dada import data, transforms
from dada.train.distributed import Distributed
from dada.train.policies import Augmentation

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]

# ImageNet RGB principal components for the lighting noise (AlexNet; Fast AA data.py, _IMAGENET_PCA).
IMAGENET_EIGENVALUES = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGENVECTORS = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
IMAGENET_RESIZE_RATIO = 256 / 224  # test: Resize(256) then CenterCrop(224) (Fast AA data.py)
IMAGENET_CROP_SCALE = (0.08, 1.0)  # RandomResizedCrop's area range (Fast AA data.py)


class ShardedBatchSampler(Sampler[list[int]]):
    """Random global batches (the last partial one dropped), this rank's slice of each.

    Every rank draws the same permutation from ``generator``, so the slices partition each batch.
    """

    def __init__(self, size: int, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"the global batch size {batch_size} is not divisible by the {world_size} ranks")
        self.size, self.batch_size, self.generator = size, batch_size, generator
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.size // self.batch_size

    def epoch_indices(self) -> torch.Tensor:
        """[steps, batch_size / world_size] indices of this rank for one epoch."""
        order = torch.randperm(self.size, generator=self.generator)[: len(self) * self.batch_size]
        return order.view(len(self), self.world_size, -1)[:, self.rank]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_indices().tolist()


@dataclass
class Preprocess:
    """Device side of every batch: uint8 -> float, [PCA lighting], normalise, [Cutout] (DADA's order)."""

    mean: list[float]
    std: list[float]
    cutout: int = 0
    lighting: float = 0.0

    def __call__(
        self, images: torch.Tensor, generator: torch.Generator | None = None, train: bool = True
    ) -> torch.Tensor:
        images = images.float().div_(255)
        if train and self.lighting > 0:
            images = pca_lighting(images, self.lighting, generator)
        images = transforms.normalize(images, self.mean, self.std)
        return transforms.cutout_normalized(images, self.cutout, generator) if train else images


def pca_lighting(images: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """AlexNet's lighting noise: add ``eigvec @ (alpha * eigval)``, alpha ~ N(0, std^2) per image and component."""
    alpha = torch.randn(images.shape[0], 3, generator=generator).to(images.device) * std
    eigenvalues = images.new_tensor(IMAGENET_EIGENVALUES)
    shift = (alpha * eigenvalues) @ images.new_tensor(IMAGENET_EIGENVECTORS).T
    return images + shift[:, :, None, None]


class TensorImages(Dataset):
    """uint8 [N,C,H,W] images as PIL for a per-image transform that returns a uint8 tensor."""

    def __init__(self, images: data.LabeledImages, transform: v2.Transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = v2.functional.to_pil_image(self.images.images[index])
        return self.transform(image), int(self.images.labels[index])


class DeviceBatches:
    """One epoch of augmented training batches, cropped, flipped and augmented on the device."""

    def __init__(
        self,
        images: data.LabeledImages,
        sampler: ShardedBatchSampler,
        augmentation: Augmentation,
        padding: int,
        generator: torch.Generator,
        device: torch.device,
    ):
        self.images, self.labels = images.images.to(device), images.labels.to(device)
        self.sampler, self.augmentation, self.padding, self.generator = sampler, augmentation, padding, generator

    def __len__(self) -> int:
        return len(self.sampler)

    def _crop_flip(self, images: torch.Tensor) -> torch.Tensor:
        return transforms.random_crop_flip(images, self.padding, self.generator)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        augmentation = self.augmentation
        for index in self.sampler.epoch_indices().to(self.images.device):
            images = self.images[index]
            if augmentation.before_crop:
                images = self._crop_flip(augmentation.apply_batch(images, self.generator))
            else:
                images = augmentation.apply_batch(self._crop_flip(images), self.generator)
            yield images, self.labels[index]


def _loader(dataset: Dataset, workers: int, generator: torch.Generator | None = None, **batching) -> DataLoader:
    return DataLoader(
        dataset,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        generator=generator,
        persistent_workers=False,
        **batching,
    )


def _pil_train_transform(augmentation: Augmentation, recipe, image_size: int, from_disk: bool) -> v2.Compose:
    """Per-image training transform: crop+flip and the policy (in ``augmentation.before_crop``'s order),
    ImageNet's colour jitter, to a uint8 tensor."""
    if from_disk:
        crop = v2.RandomResizedCrop(image_size, scale=IMAGENET_CROP_SCALE, interpolation=InterpolationMode.BICUBIC)
    else:
        crop = v2.RandomCrop(image_size, padding=recipe.crop_padding)
    crop_flip = [crop, v2.RandomHorizontalFlip()]
    steps = [augmentation.transform, *crop_flip] if augmentation.before_crop else [*crop_flip, augmentation.transform]
    if recipe.color_jitter > 0:
        steps.append(v2.ColorJitter(recipe.color_jitter, recipe.color_jitter, recipe.color_jitter))
    return v2.Compose([*steps, v2.PILToTensor()])


def _imagenet_test_transform(image_size: int) -> v2.Compose:
    """Image-folder evaluation, as ImageNet's: Resize(256, bicubic), CenterCrop(224) (at 224), as uint8."""
    return v2.Compose(
        [
            v2.Resize(round(image_size * IMAGENET_RESIZE_RATIO), interpolation=InterpolationMode.BICUBIC),
            v2.CenterCrop(image_size),
            v2.PILToTensor(),
        ]
    )


def _load(name: str, root: str, train: bool, size: int | None, seed: int, transform: v2.Transform):
    """An in-memory set as `LabeledImages`, a folder set as an ``ImageFolder``; a stratified subset if ``size`` asks."""
    if data.get_spec(name).in_memory:
        images = data.load_images(name, root, train=train)
        labels = images.labels
    else:
        images = data.load_image_folder(name, root, train=train, transform=transform)
        labels = torch.tensor(images.targets)
    if size is None or size >= len(labels):
        return images
    chosen = data.reduced_indices(labels, size, seed=seed)
    return images.subset(chosen) if isinstance(images, data.LabeledImages) else Subset(images, chosen.tolist())


def load_train_split(dataset_cfg, augmentation: Augmentation, recipe, size: int | None, seed: int):
    """The evaluation's training set (``eval_train_split``: SVHN adds extra), a seeded stratified subset if scaled."""
    transform = _pil_train_transform(augmentation, recipe, dataset_cfg.image_size, from_disk=True)
    return _load(dataset_cfg.eval_train_split, dataset_cfg.root, True, size, seed, transform)


def load_test_split(dataset_cfg, size: int | None, seed: int):
    """The test set (image folders: the validation split), a fixed stratified subset if scaled."""
    transform = _imagenet_test_transform(dataset_cfg.image_size)
    return _load(dataset_cfg.name, dataset_cfg.root, False, size, seed, transform)


def train_batches(
    split,
    augmentation: Augmentation,
    recipe,
    image_size: int,
    sampler: ShardedBatchSampler,
    generator: torch.Generator,
    device: torch.device,
    workers: int,
) -> Batches:
    """One epoch per iteration: uint8 [B,C,H,W] batches after crop, flip and the policy, on ``device``."""
    if augmentation.on_device:
        return DeviceBatches(split, sampler, augmentation, recipe.crop_padding, generator, device)
    if isinstance(split, data.LabeledImages):
        split = TensorImages(split, _pil_train_transform(augmentation, recipe, image_size, from_disk=False))
    return _loader(split, workers, generator, batch_sampler=sampler)


def test_batches(split, batch_size: int, dist: Distributed, device: torch.device, workers: int) -> Batches:
    """This rank's share of the test set (every ``world_size``-th image), in fixed order."""
    if isinstance(split, data.LabeledImages):
        shard = split.subset(torch.arange(dist.rank, len(split), dist.world_size))
        images, labels = shard.images.to(device), shard.labels.to(device)
        return [
            (images[start : start + batch_size], labels[start : start + batch_size])
            for start in range(0, len(labels), batch_size)
        ]
    shard = Subset(split, range(dist.rank, len(split), dist.world_size))
    return _loader(shard, workers, batch_size=batch_size, shuffle=False)
