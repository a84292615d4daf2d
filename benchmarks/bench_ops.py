"""Augmentation throughput: the official per-image PIL path vs dada's batched tensor path.

    python benchmarks/bench_ops.py [--quick] [--threads N]

Both paths apply the same random policy of 25 sub-policies of 2 ops (op, probability, level), as DADA searches:
  (a) PIL, per image, as the official DADA / Fast AA code runs it: pick a random sub-policy, apply each op with
      its probability via ``apply_pil``, then ``ToTensor``; the images are stacked into a batch;
  (b) batched: one random sub-policy per image, its two ops applied with ``apply_indexed`` (one call per op
      slot) to a uint8 batch already on the device, returning float images as ToTensor does.
Sizes: 32x32 at batch 128 (CIFAR-10 fixtures, tiled) and 224x224 at batch 64 (ImageNet fixtures, tiled), on CPU
and, when present, CUDA (CUDA events, synchronised; (a) always runs on CPU). Warm-up runs are not timed; each
figure is the median over the timed batches. Prints images/s of each path and the ratio b / a.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps

from dada.ops import OP_NAMES, apply_indexed, apply_pil

NUM_SUB_POLICIES, OPS_PER_SUB_POLICY = 25, 2  # DADA Sec. 4.1
SETTINGS = (("cifar10", 32, 128), ("imagenet", 224, 64))


def random_policy(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """op index, probability and level, each [25, 2], drawn uniformly."""
    generator = torch.Generator().manual_seed(seed)
    shape = (NUM_SUB_POLICIES, OPS_PER_SUB_POLICY)
    op_index = torch.randint(len(OP_NAMES), shape, generator=generator)
    return op_index, torch.rand(shape, generator=generator), torch.rand(shape, generator=generator)


def fixture_images(prefix: str, size: int, count: int) -> list[Image.Image]:
    """foolbox's real fixture images, centre-cropped to ``size`` and tiled to ``count``; random ones without foolbox."""
    spec = importlib.util.find_spec("foolbox")
    paths = sorted((Path(spec.origin).parent / "data").glob(f"{prefix}_*")) if spec else []
    images = [ImageOps.fit(Image.open(path).convert("RGB"), (size, size)) for path in paths]
    if not images:
        rng = np.random.default_rng(0)
        images = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]
    return [images[i % len(images)] for i in range(count)]


def pil_path(images: list[Image.Image], policy: tuple[torch.Tensor, ...]) -> Callable[[], torch.Tensor]:
    op_index, probability, level = (t.tolist() for t in policy)

    def run() -> torch.Tensor:
        tensors = []
        for image in images:
            chosen = random.randrange(NUM_SUB_POLICIES)
            for slot in range(OPS_PER_SUB_POLICY):
                if random.random() < probability[chosen][slot]:
                    image = apply_pil(image, OP_NAMES[op_index[chosen][slot]], level[chosen][slot])
            tensors.append(TF.to_tensor(image))
        return torch.stack(tensors)

    return run


def batched_path(
    batch: torch.Tensor, policy: tuple[torch.Tensor, ...], dtype: torch.dtype = torch.float32
) -> Callable[[], torch.Tensor]:
    """(b) on a uint8 ``batch``, its images as ``dtype`` in [0, 1] (the batch's memory format kept)."""
    op_index, probability, level = (t.to(batch.device) for t in policy)

    def run() -> torch.Tensor:
        chosen = torch.randint(NUM_SUB_POLICIES, (len(batch),), device=batch.device)
        fires = torch.rand(len(batch), OPS_PER_SUB_POLICY, device=batch.device) < probability[chosen]
        images = batch.to(dtype).div_(255)
        for slot in range(OPS_PER_SUB_POLICY):
            images = apply_indexed(images, op_index[chosen, slot], level[chosen, slot], mask=fires[:, slot])
        return images

    return run


def seconds_per_call(run: Callable[[], torch.Tensor], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of one call, warm-up excluded; CUDA timed with events after a synchronise."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        else:
            begin = time.perf_counter()
            run()
            times.append(time.perf_counter() - begin)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few timed batches, for a smoke run")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads for the batched path (default 1: the PIL path uses one core)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(0)
    torch.manual_seed(0)
    warmup, repeats = (1, 3) if args.quick else (3, 25)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    policy = random_policy()
    print(
        f"torch {torch.__version__}, {args.threads} CPU thread(s) for the batched path, "
        f"median of {repeats} batches after {warmup} warm-up"
    )
    print(f"{'device':<8}{'images':>10}{'batch':>7}{'(a) PIL img/s':>16}{'(b) batched img/s':>20}{'b / a':>8}")
    for prefix, size, batch_size in SETTINGS:
        images = fixture_images(prefix, size, batch_size)
        pil_seconds = seconds_per_call(pil_path(images, policy), torch.device("cpu"), warmup, repeats)
        batch = torch.stack([torch.from_numpy(np.array(image)).permute(2, 0, 1) for image in images])
        for device in devices:
            run = batched_path(batch.to(device), policy)
            batched_seconds = seconds_per_call(run, device, warmup, repeats)
            print(
                f"{device.type:<8}{f'{size}x{size}':>10}{batch_size:>7}{batch_size / pil_seconds:>16,.0f}"
                f"{batch_size / batched_seconds:>20,.0f}{pil_seconds / batched_seconds:>7.1f}x"
            )


if __name__ == "__main__":
    main()
