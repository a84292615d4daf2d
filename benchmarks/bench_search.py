"""Search throughput: steps/s of dada's bi-level search vs an emulation of the official DADA pipeline.

    python benchmarks/bench_search.py [--quick] [--device cpu|cuda] [--threads N]

Both paths run the same network, the same ``BiLevelOptimizer.step`` (Eq. 16-19, unrolled, RELAX) at the same
batch size on the reduced Fashion-MNIST search split (real images); only the making of the batches differs:
  (a) ours, as ``SearchRun._epoch``: the uint8 split lives on the device; a random batch is cropped and flipped
      there (``random_crop_flip``) and the step augments it with the batched ops, normalises it and cuts it out;
  (b) the official pipeline (search_relax/dataset.py, train_search_paper.py), emulated: the estimator draws the
      batch's sub-policy and gates first and sets them on the dataset; a DataLoader with num_workers=0 then makes
      each image on the CPU from a PIL image (RandomCrop(32, padding=4), flip, the fired ops via ``apply_pil``
      with levels read from the shared magnitudes, ToTensor, Normalize, Cutout); the validation batch comes from
      a fresh iterator over ToTensor + Normalize (``next(iter(valid_queue))``); both are copied to the device,
      and the step adds only the straight-through magnitude gradient (the official DifferentiableAugment).
  (c) network only: (b)'s step on one batch loaded in advance. Data cost nothing here, so (c) / (b) is the most
      that a faster data pipeline alone could gain over (b) with this network (printed as ``bound``; (a) can
      pass it only through a cheaper step).
The emulation leaves out what the official step costs beyond ours (a model rebuilt every step, the network
step's second forward pass, ``set_detect_anomaly``), so the ratio a / b understates the speed-up over the
official code. CPU: WRN-10-1, CUDA: the paper's WRN-40-2, batch 128 on both. Warm-up steps are not timed; the
paths' timed repetitions take turns (ABC CBA), so that a shared, noisy machine slows both alike; each figure is
the median over the repetitions, the ratio the median of the paired ratios. Torch runs on one CPU thread by
default (``--threads``): the official loader uses one core, and OpenMP threads beyond the free cores of a shared
machine stall each other.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from bench_ops import seconds_per_call
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from dada import transforms
from dada.config import compose_app_config
from dada.data.search_set import SearchData, prepare_search_data
from dada.ops import OP_NAMES, apply_pil
from dada.search.augment import SearchInputs, on_network_input
from dada.search.bilevel import StepResult
from dada.search.loop import SearchRun
from dada.search.space import SearchSpace

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
MODELS = {"cpu": "wrn10_1", "cuda": "wrn40_2"}  # WRN-40-2: the paper's search network (section 4.1)
TARGETS = {"cpu": 2.0, "cuda": 10.0}  # the speed-ups the issue asks for
# (warm-up steps, timed steps per repetition, repetitions) per device, full and --quick
SCHEDULES = {
    ("cpu", False): (2, 4, 10),
    ("cpu", True): (1, 1, 2),
    ("cuda", False): (10, 20, 6),
    ("cuda", True): (3, 5, 2),
}


def search_config(model: str, device: str, run_dir: str, extra: Sequence[str] = ()) -> DictConfig:
    """The search app's real config: reduced Fashion-MNIST at the paper's scale (batch 128), RELAX, ``model``;
    ``extra`` overrides follow."""
    return compose_app_config(
        "search",
        [
            "dataset=fashion-mnist",
            "scale=paper",
            "estimator=relax",
            f"model={model}",
            f"device={device}",
            f"run_dir={run_dir}",
            *extra,
        ],
    )


# -- the official data pipeline ------------------------------------------------------------------------------------


class ImageList(Dataset):
    """uint8 [N,3,H,W] images held as PIL images, with int labels; ``transform`` maps a PIL image to a tensor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        self.images = [Image.fromarray(image.permute(1, 2, 0).cpu().numpy()) for image in images]
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), self.labels[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={len(self)}, transform={self.transform})"


class OfficialAugmentDataset(ImageList):
    """The official ``AugmentDataset`` in search mode: crop and flip, the batch's sub-policy, then ``transform``.

    The sub-policy index and gates of the next batch live on the dataset (``set_batch_policy``, called by the
    loop before each batch), which is why the official loader must run with num_workers=0. As in the official
    code, every image reads them, and the magnitudes, from those shared (device) tensors.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, transform: Callable, space: SearchSpace, crop_padding: int
    ):
        super().__init__(images, labels, transform)
        self.crop_flip = T.Compose([T.RandomCrop(images.shape[-1], padding=crop_padding), T.RandomHorizontalFlip()])
        self.sub_policies = [tuple(OP_NAMES[op] for op in ops) for ops in space.sub_policies.tolist()]
        self.magnitudes = space.magnitude
        self.category: torch.Tensor | None = None
        self.gates: torch.Tensor | None = None

    def set_batch_policy(self, category: torch.Tensor, gates: torch.Tensor) -> None:
        """The next batch's sub-policy index and the gates of every sub-policy, [num_sub_policies, ops]."""
        if gates.shape != self.magnitudes.shape:
            raise ValueError(f"gates must have shape {tuple(self.magnitudes.shape)}, got {tuple(gates.shape)}")
        self.category, self.gates = category, gates

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.category is None:
            raise RuntimeError("call set_batch_policy(category, gates) before loading a batch")
        image = self.crop_flip(self.images[index])
        category = int(self.category)
        magnitudes, gates = self.magnitudes.detach().clamp(0, 1)[category], self.gates[category]
        for slot, name in enumerate(self.sub_policies[category]):
            if gates[slot].item() != 0.0:
                image = apply_pil(image, name, float(magnitudes[slot]))
        return self.transform(image), self.labels[index]


def _cutout_one(image: torch.Tensor, size: int) -> torch.Tensor:
    """Cutout on one [C,H,W] image, as the official per-image ``CutoutDefault``."""
    return transforms.cutout_normalized(image[None], size)[0]


def official_loaders(
    split: SearchData,
    space: SearchSpace,
    batch_size: int,
    cutout: int,
    mean,
    std,
    *,
    crop_padding: int,
    pin_memory: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """The official train queue (pad-crop, flip, augmenting, Cutout) and valid queue (ToTensor, Normalize),
    num_workers=0."""
    to_tensor = [T.ToTensor(), T.Normalize(list(mean), list(std))]
    train_set = OfficialAugmentDataset(
        split.train_images,
        split.train_labels,
        T.Compose([*to_tensor, T.Lambda(partial(_cutout_one, size=cutout))]),
        space,
        crop_padding,
    )
    val_set = ImageList(split.val_images, split.val_labels, T.Compose(to_tensor))
    options = {"batch_size": batch_size, "shuffle": True, "num_workers": 0, "pin_memory": pin_memory}
    return DataLoader(train_set, drop_last=True, **options), DataLoader(val_set, **options)


# -- the two paths ---------------------------------------------------------------------------------------------------


class PreprocessedInputs(SearchInputs):
    """The augmentation seam for batches the official loader already augmented, normalised and cut out: only the
    official DifferentiableAugment/MixedAugment gradient paths are added to the network input."""

    def __init__(self, space: SearchSpace):
        super().__init__(space, mean=[], std=[], cutout=0, generator=None, official=True)

    def train(self, images: torch.Tensor, samples) -> torch.Tensor:
        return on_network_input(images, self.space, samples)

    def val(self, images: torch.Tensor) -> torch.Tensor:
        return images


class PresampledEstimator:
    """``estimator`` whose ``sample`` returns the draw made before the batch was loaded (the official order)."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.pending = None

    def sample(self, *args, **kwargs):
        return self.pending

    def __getattr__(self, name: str):  # the gradient methods are the wrapped estimator's
        return getattr(self.estimator, name)

    def __repr__(self) -> str:
        return f"PresampledEstimator({self.estimator.name}, pending={self.pending})"


class OursPipeline:
    """(a) SearchRun's step on a random batch of the device-resident uint8 split."""

    def __init__(self, run: SearchRun, split: SearchData):
        self.run, self.split = run, split

    def _draw(self, count: int) -> torch.Tensor:
        return torch.randperm(count, generator=self.run.generator, device=self.run.device)[: self.run.batch_size]

    def step(self) -> StepResult:
        run, split = self.run, self.split
        train, val = self._draw(len(split.train_labels)), self._draw(len(split.val_labels))
        return run.optimizer.step(run.train_batch(split, train), run.val_batch(split, val), run.generator)


class OfficialPipeline:
    """(b) The same step, network and optimisers as ``run``'s, on batches from the official PIL pipeline."""

    def __init__(self, run: SearchRun, split: SearchData):
        if run.optimizer.sampling != "batch":
            raise ValueError("the official pipeline samples one sub-policy per batch; use search.sampling=batch")
        self.run = run
        self.train_loader, self.val_loader = official_loaders(
            split,
            run.space,
            run.batch_size,
            run.cutout,
            run.cfg.dataset.mean,
            run.cfg.dataset.std,
            crop_padding=run.cfg.search.crop_padding,
            pin_memory=run.device.type == "cuda",
        )
        self.estimator = PresampledEstimator(run.estimator)
        self.optimizer = copy.copy(run.optimizer)
        self.optimizer.estimator = self.estimator
        self.optimizer.inputs = PreprocessedInputs(run.space)
        self._train_batches = iter(self.train_loader)

    def _next_train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        batch = next(self._train_batches, None)
        if batch is None:  # a new epoch
            self._train_batches = iter(self.train_loader)
            batch = next(self._train_batches)
        return batch

    def batches(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Draw the step's sub-policy and gates, then load the train and val batches onto the device."""
        run, device = self.run, self.run.device
        sample = run.estimator.sample(run.space.alpha, run.space.probabilities().flatten(), generator=run.generator)
        self.estimator.pending = sample
        self.train_loader.dataset.set_batch_policy(sample.category, sample.gates.view_as(run.space.probability))
        train_images, train_labels = self._next_train_batch()
        val_images, val_labels = next(iter(self.val_loader))  # a fresh iterator every step, as the official loop
        train = (train_images.to(device, non_blocking=True), train_labels.to(device, non_blocking=True))
        val = (val_images.to(device, non_blocking=True), val_labels.to(device, non_blocking=True))
        return train, val

    def update(self, train, val) -> StepResult:
        """The bi-level step on batches from ``batches`` (the pending sample must be theirs)."""
        return self.optimizer.step(train, val, self.run.generator)

    def step(self) -> StepResult:
        return self.update(*self.batches())


class NetworkOnly:
    """(c) The official step on one batch loaded in advance: what a step costs with free data. Its rate bounds
    the speed-up that any pipeline can reach over (b) with this network: steps/s (c) / steps/s (b)."""

    def __init__(self, official: OfficialPipeline):
        self.official = official
        self.train, self.val = official.batches()

    def step(self) -> StepResult:
        return self.official.update(self.train, self.val)


# -- timing ----------------------------------------------------------------------------------------------------------


def _repeated(step: Callable[[], object], count: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(count):
            step()

    return run


def interleaved_rates(
    paths: dict[str, Callable[[], object]], device: torch.device, warmup: int, steps: int, repeats: int
) -> dict[str, list[float]]:
    """Steps/s of each path in each of ``repeats`` repetitions of ``steps`` steps; the paths take turns, ABC CBA."""
    for step in paths.values():
        _repeated(step, warmup)()
    names, rates = list(paths), {name: [] for name in paths}
    for repetition in range(repeats):
        for name in names if repetition % 2 == 0 else reversed(names):
            seconds = seconds_per_call(_repeated(paths[name], steps), device, warmup=0, repeats=1)
            rates[name].append(steps / seconds)
    return rates


@dataclass
class Row:
    """One line of the table: both paths' steps/s per repetition on one device."""

    device: str
    model: str
    batch: int
    ours: list[float]
    official: list[float]
    network: list[float]

    HEADER = (
        "device",
        "model",
        "batch",
        "ours steps/s",
        "official-emu steps/s",
        "ratio",
        "(min-max)",
        "target",
        "network-only steps/s",
        "bound",
    )

    @staticmethod
    def format(*cells: str) -> str:
        return "{:<7}{:<9}{:>6}{:>14}{:>22}{:>8} {:<12} {:<15}{:>22}{:>8}".format(*cells)

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.official)]

    def __str__(self) -> str:
        ratio, target = statistics.median(self.ratios), TARGETS[self.device]
        return self.format(
            self.device,
            self.model,
            self.batch,
            f"{statistics.median(self.ours):.3f}",
            f"{statistics.median(self.official):.3f}",
            f"{ratio:.2f}x",
            f"({min(self.ratios):.2f}-{max(self.ratios):.2f})",
            f"{'meets' if ratio >= target else 'misses'} >= {target:g}x",
            f"{statistics.median(self.network):.3f}",
            f"{statistics.median(self.bounds):.2f}x",
        )

    @property
    def bounds(self) -> list[float]:
        """Per repetition, the largest ratio a pipeline with free data could reach: network-only / official."""
        return [c / b for c, b in zip(self.network, self.official)]


def measure(device: str, quick: bool) -> Row:
    """Build one search run on ``device`` and time both paths on it."""
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = search_config(MODELS[device], device, run_dir)
        run = SearchRun(cfg)
        split = prepare_search_data(cfg.dataset, run.device)
        official = OfficialPipeline(run, split)
        paths = {
            "ours": OursPipeline(run, split).step,
            "official": official.step,
            "network": NetworkOnly(official).step,
        }
        warmup, steps, repeats = SCHEDULES[device, quick]
        rates = interleaved_rates(paths, run.device, warmup, steps, repeats)
    return Row(device, MODELS[device], run.batch_size, rates["ours"], rates["official"], rates["network"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few timed steps, for a smoke run")
    parser.add_argument("--device", choices=sorted(MODELS), help="one device only (default: cpu, and cuda if present)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both paths (default 1)")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); search steps/s (one step = one "
        f"bi-level update, Eq. 16-19), median over repetitions, paths alternating"
    )
    for device in devices:
        warmup, steps, repeats = SCHEDULES[device, args.quick]
        print(f"  {device}: {warmup} warm-up steps per path, then {repeats} repetitions of {steps} steps per path")
    rows = [measure(device, args.quick) for device in devices]
    print(Row.format(*Row.HEADER))
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
