"""dada.train: policies, recipes and schedules, the data pipeline, aggregation, and short real runs on Fashion-MNIST."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_image_folder
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from PIL import Image
from torchvision.transforms import v2

from dada import checkpoint, data
from dada.config import compose_app_config
from dada.policy import Policy, load_named
from dada.train import (
    POLICIES,
    ClassificationMeters,
    Distributed,
    TrainRun,
    create_augmentation,
    create_scheduler,
    pipeline,
    plan_schedule,
)

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
PAPER_PAIRS = [
    ("wrn40_2", "cifar10"),
    ("wrn40_2", "cifar100"),
    ("wrn28_10", "cifar10"),
    ("wrn28_10", "cifar100"),
    ("shakeshake26_2x32d", "cifar10"),
    ("shakeshake26_2x96d", "cifar10"),
    ("shakeshake26_2x112d", "cifar10"),
    ("shakeshake26_2x96d", "cifar100"),
    ("pyramidnet272_a200_shakedrop", "cifar10"),
    ("pyramidnet272_a200_shakedrop", "cifar100"),
    ("wrn28_10", "svhn"),
    ("shakeshake26_2x96d", "svhn"),
    ("resnet50", "imagenet"),
    ("wrn40_2", "fashion-mnist"),
]
TINY = ["scale.train_images=256", "scale.test_images=128", "scale.train_epochs=1", "scale.batch_size=32"]


def compose_train(*overrides):
    return compose_app_config("train", overrides)


@pytest.fixture(scope="module")
def fashion_root(tmp_path_factory):
    """A data root holding the decompressed Fashion-MNIST once for the whole module."""
    root = tmp_path_factory.mktemp("fashion-root")
    data.load_images("fashion-mnist", root, train=False)
    return root


@pytest.fixture(scope="module")
def cifar_batch():
    """The 20 real CIFAR-10 images foolbox ships, as uint8 [20,3,32,32]."""
    folder = Path(importlib.util.find_spec("foolbox").origin).parent / "data"
    images = [np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("cifar10_*.png"))]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture
def policy_file(tmp_path):
    return str(Policy.random(25, 2, seed=3).save(tmp_path / "policy.json"))


def run_config(tmp_path, fashion_root, *overrides):
    return compose_train(f"run_dir={tmp_path / 'run'}", f"dataset.root={fashion_root}", *TINY, *overrides)


# -- policies ---------------------------------------------------------------------------------------------------


def _policy_overrides(name, policy_file):
    return [f"policy={name}"] + ([f"policy.source={policy_file}"] if name == "dada" else [])


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_keeps_shape_and_dtype_and_changes_the_batch_unless_identity(name, cifar_batch):
    cfg = compose_train(f"policy={name}")  # dada: the shipped CIFAR-10 policy
    torch.manual_seed(0)
    augmentation = create_augmentation(cfg.policy, "cifar10", seed=0)
    if augmentation.on_device:
        out = augmentation.apply_batch(cifar_batch, torch.Generator().manual_seed(0))
    else:
        out = torch.stack(
            [
                v2.functional.pil_to_tensor(augmentation.transform(v2.functional.to_pil_image(image)))
                for image in cifar_batch
            ]
        )
    assert out.shape == cifar_batch.shape and out.dtype == torch.uint8
    assert torch.equal(out, cifar_batch) == (name in ("none", "cutout"))


def test_policy_placement_follows_the_policy_and_the_data(policy_file):
    on_device = compose_train(*_policy_overrides("dada", policy_file)).policy
    assert create_augmentation(on_device, "cifar10", 0).on_device
    assert not create_augmentation(on_device, "imagenet", 0, in_memory=False).on_device
    forced = OmegaConf.merge(on_device, {"on_device": False})
    assert not create_augmentation(forced, "cifar10", 0).on_device
    autoaugment = OmegaConf.merge(compose_train("policy=autoaugment").policy, {"on_device": True})
    with pytest.raises(ValueError, match="one op per call"):
        create_augmentation(autoaugment, "cifar10", 0)


def test_policy_sources_by_data_set_and_seed():
    autoaugment = compose_train("policy=autoaugment").policy
    assert create_augmentation(autoaugment, "svhn", 0).source == "svhn"
    assert create_augmentation(autoaugment, "cifar100", 0).source == "cifar10"
    random_policy = compose_train("policy=random").policy
    assert create_augmentation(random_policy, "cifar10", 7).source == "random-25x2-seed7"
    with pytest.raises(ValueError, match="valid choices"):
        create_augmentation(OmegaConf.merge(random_policy, {"name": "bogus"}), "cifar10", 0)


@pytest.mark.parametrize(
    "dataset,dada,fastaa",
    [
        ("cifar10", "cifar10", "cifar10"),
        ("cifar100", "cifar100", "cifar10"),
        ("svhn", "svhn", "svhn"),
        ("imagenet", "imagenet", "imagenet"),
        ("fashion-mnist", "cifar10", "cifar10"),
    ],
)
def test_released_policies_follow_the_data_set(dataset, dada, fastaa):
    augmentation = create_augmentation(compose_train("policy=dada").policy, dataset, 0)
    assert augmentation.source == dada and augmentation.on_device
    assert augmentation.transform.to_archive() == load_named(dada).to_archive()
    augmentation = create_augmentation(compose_train("policy=fastaa").policy, dataset, 0)
    assert augmentation.source == f"fastaa-{fastaa}" and augmentation.on_device
    assert augmentation.transform.to_archive() == load_named(fastaa, "fastaa").to_archive()


def test_released_policies_need_a_source_elsewhere_and_check_it():
    for name in ("dada", "fastaa", "autoaugment"):
        with pytest.raises(ValueError, match="data set 'folder': set policy.source to one of cifar10, "):
            create_augmentation(compose_train(f"policy={name}").policy, "folder", 0)
    chosen = create_augmentation(compose_train("policy=fastaa", "policy.source=svhn").policy, "cifar10", 0)
    assert chosen.source == "fastaa-svhn"
    with pytest.raises(ValueError, match="'cifar100'; valid: cifar10, svhn, imagenet"):
        create_augmentation(compose_train("policy=fastaa", "policy.source=cifar100").policy, "cifar100", 0)


def test_cutout_zeroes_a_square_after_normalisation(cifar_batch):
    preprocess = pipeline.Preprocess([0.5] * 3, [0.25] * 3, cutout=16)
    plain = pipeline.Preprocess([0.5] * 3, [0.25] * 3, cutout=0)(cifar_batch)
    out = preprocess(cifar_batch, torch.Generator().manual_seed(0))
    zeroed = (out == 0).all(dim=1) & (plain != 0).all(dim=1)
    assert zeroed.flatten(1).sum(1).min() >= 8 * 8  # a 16x16 square clipped at a corner keeps at least 8x8
    assert torch.equal(preprocess(cifar_batch, train=False), plain)


# -- recipes and schedules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model,dataset", PAPER_PAIRS)
def test_every_paper_pair_has_a_recipe(model, dataset):
    recipe = compose_train(f"model={model}", f"dataset={dataset}", "scale=paper").recipe
    assert recipe.epochs in (200, 270, 1800) and recipe.lr > 0 and recipe.weight_decay > 0
    assert recipe.nesterov and recipe.momentum == 0.9


def test_recipes_hold_the_papers_values():
    wrn = compose_train("model=wrn40_2", "dataset=cifar10", "scale=paper").recipe
    assert (wrn.batch_size, wrn.lr, wrn.weight_decay) == (512, 0.1, 2e-4)
    assert (wrn.warmup_multiplier, wrn.warmup_epochs, wrn.grad_clip) == (4, 5, 5)
    pyramid = compose_train("model=pyramidnet272_a200_shakedrop", "dataset=cifar100", "scale=paper").recipe
    assert (pyramid.batch_size, pyramid.lr, pyramid.weight_decay, pyramid.warmup_epochs) == (64, 0.025, 5e-4, 0)
    resnet = compose_train("model=resnet50", "dataset=imagenet", "scale=paper").recipe
    assert (resnet.schedule, list(resnet.milestones), resnet.grad_clip, resnet.warmup_multiplier) == (
        "multistep",
        [90, 180, 240],
        0.0,
        2.0,
    )


def _lrs(recipe, train_size):
    schedule = plan_schedule(recipe, train_size)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr * recipe.warmup_multiplier)
    scheduler = create_scheduler(optimizer, recipe, schedule)
    lrs = []
    for step in range(schedule.total_steps):
        scheduler.step_update(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    return schedule, lrs


def test_warmup_ramps_to_four_times_the_lr_then_cosine_to_zero():
    cfg = compose_train("model=wrn40_2", "dataset=cifar10", "scale=paper")
    schedule, lrs = _lrs(cfg.recipe, train_size=50_000)
    assert schedule.steps_per_epoch == 97 and schedule.warmup_steps == 5 * 97
    assert lrs[0] == pytest.approx(0.1) and lrs[schedule.warmup_steps] == pytest.approx(0.4)
    assert all(a < b for a, b in zip(lrs[: schedule.warmup_steps], lrs[1 : schedule.warmup_steps + 1]))
    assert all(a >= b for a, b in zip(lrs[schedule.warmup_steps :], lrs[schedule.warmup_steps + 1 :]))
    assert lrs[-1] < 1e-5


def test_scale_train_batch_size_caps_the_evaluation_batch_only():
    cfg = compose_train("dataset=fashion-mnist", "scale=mini")
    assert cfg.recipe.batch_size == 64 == plan_schedule(cfg.recipe, train_size=500).batch_size  # mini: 64
    assert compose_app_config("search", ["dataset=fashion-mnist", "scale=mini"]).search.batch_size == 128
    # null: the scale's batch_size, which the search also takes
    fallback = compose_train("dataset=fashion-mnist", "scale=mini", "scale.train_batch_size=null")
    assert fallback.recipe.batch_size == 128


def test_multistep_divides_the_lr_by_ten_at_each_scaled_milestone():
    cfg = compose_train("model=resnet50", "dataset=imagenet", "scale=paper", "scale.train_epochs=27")
    schedule, lrs = _lrs(cfg.recipe, train_size=10 * 1024)
    assert schedule.milestone_steps == (90, 180, 240) and schedule.warmup_steps == 3  # a tenth of 270 epochs
    after_warmup = [lrs[schedule.warmup_steps + step] for step in (0, 89, 90, 179, 180, 240)]
    assert after_warmup == pytest.approx([0.4, 0.4, 0.04, 0.04, 0.004, 0.0004])


def test_batches_of_two_ranks_partition_each_global_batch():
    samplers = [pipeline.ShardedBatchSampler(100, 20, torch.Generator().manual_seed(5), rank, 2) for rank in (0, 1)]
    first, second = (list(sampler) for sampler in samplers)
    assert len(first) == len(second) == 5
    union = [sorted(a + b) for a, b in zip(first, second)]
    assert all(len(batch) == 20 and len(set(batch)) == 20 for batch in union)
    assert len({index for batch in union for index in batch}) == 100
    with pytest.raises(ValueError, match="not divisible"):
        pipeline.ShardedBatchSampler(100, 21, torch.Generator(), 0, 2)


def test_imagenet_pipeline_reads_an_image_folder(tmp_path, policy_file):
    for split, wnids in (("train", ("n01", "n02")), ("val", ("n01", "n02"))):
        for index, wnid in enumerate(wnids):
            (tmp_path / "imagenet" / split / wnid).mkdir(parents=True)
            for item in range(3):
                pixels = np.random.default_rng(index * 10 + item).integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "imagenet" / split / wnid / f"{item}.png")
    cfg = compose_train(
        "dataset=imagenet",
        "model=resnet50",
        "scale=paper",
        f"dataset.root={tmp_path}",
        *_policy_overrides("dada", policy_file),
    )
    augmentation = create_augmentation(cfg.policy, "imagenet", 0, in_memory=False)
    train = pipeline.load_train_split(cfg.dataset, augmentation, cfg.recipe, size=4, seed=0)
    sampler = pipeline.ShardedBatchSampler(len(train), 2, torch.Generator().manual_seed(0))
    batches = pipeline.train_batches(train, augmentation, cfg.recipe, 224, sampler, None, torch.device("cpu"), 0)
    images, labels = next(iter(batches))
    assert images.shape == (2, 3, 224, 224) and images.dtype == torch.uint8 and len(train) == 4
    test = pipeline.load_test_split(cfg.dataset, size=None, seed=0)
    images, labels = next(iter(pipeline.test_batches(test, 8, Distributed(), torch.device("cpu"), 0)))
    assert images.shape == (6, 3, 224, 224) and sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_evaluation_on_your_own_image_folder(tmp_path, policy_file):
    for split, per_class in (("train", 12), ("val", 2)):
        write_image_folder(tmp_path / "mine" / split, ["ant", "bee", "cow"], per_class, size=20)
    cfg = compose_train(
        f"run_dir={tmp_path / 'run'}",
        *TINY,
        "dataset=folder",
        f"dataset.root={tmp_path / 'mine'}",
        "dataset.num_classes=3",
        "dataset.image_size=16",
        "recipe=wrn40_2-cifar10",
        "num_workers=1",
        *_policy_overrides("dada", policy_file),
    )
    summary = TrainRun(cfg).run()
    assert summary["status"] == "FINISHED" and summary["dataset"] == "folder"
    assert 0 <= summary["test_error_top1"] <= 100


# -- metrics and aggregation ---------------------------------------------------------------------------------------


def test_meters_count_whole_images_across_batches():
    generator = torch.Generator().manual_seed(0)
    meters, correct, total = ClassificationMeters(), 0, 0
    for size in (64, 64, 17):
        logits, labels = torch.randn(size, 10, generator=generator), torch.randint(0, 10, (size,), generator=generator)
        meters.update(logits, labels, loss=2.0)
        correct, total = correct + (logits.argmax(1) == labels).sum().item(), total + size
    result = meters.reduce(Distributed())
    assert result["error_top1"] == 100 * (total - correct) / total and result["loss"] == 2.0
    assert result["error_top5"] < result["error_top1"]


def test_top5_is_left_out_with_five_classes_or_fewer():
    meters = ClassificationMeters()
    meters.update(torch.randn(8, 3), torch.randint(0, 3, (8,)), loss=1.0)
    assert set(meters.reduce(Distributed())) == {"loss", "error_top1"}


# -- the app --------------------------------------------------------------------------------------------------------


def test_unknown_config_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="bogus_key"):
        compose_train("bogus_key=1")


def test_run_name_and_folder_follow_the_choices():
    cfg = compose_train("policy=random", "seed=4", "tag=-try2")
    assert cfg.name == "train-fashion-mnist-wrn10_1-random-smoke-try2"  # the network that runs at smoke scale
    assert cfg.run_dir == "runs/smoke/train_fashion-mnist_wrn40_2-on-wrn10_1/random-try2/seed4"  # dada.layout


@pytest.mark.slow
@pytest.mark.parametrize("name", ["none", "dada", "trivialaugment", "fastaa"])
def test_smoke_evaluation_writes_both_errors_and_is_a_no_op_when_rerun(name, tmp_path, fashion_root, policy_file):
    cfg = run_config(tmp_path, fashion_root, *_policy_overrides(name, policy_file), "num_workers=1")
    summary = TrainRun(cfg).run()
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["status"] == "FINISHED" and written["policy"]["name"] == name
    assert 0 <= written["test_error_top1"] <= 100 and 0 <= written["test_error_top5"] <= written["test_error_top1"]
    assert written["test_error_best_epoch_selected_on_test"] <= written["test_error_top1"]
    assert written["cost"]["eval_device_hours"] > 0 and written["cost"]["unit"] == "CPU-hours"
    assert summary["test_error_top1"] == written["test_error_top1"]
    stamp = (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns
    assert TrainRun(cfg).run()["test_error_top1"] == written["test_error_top1"]
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="policy"):
        TrainRun(run_config(tmp_path, fashion_root, "policy=cutout")).run()


def test_corrupt_checkpoint_raises_naming_the_file_and_keeps_it(tmp_path, fashion_root):
    path = tmp_path / "run" / "checkpoint.pt"
    path.parent.mkdir()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CorruptCheckpointError, match=str(path)):
        TrainRun(run_config(tmp_path, fashion_root, "policy=none")).run()
    assert path.read_bytes() == b"not a checkpoint"


class _NanAfter:
    """A loss that turns NaN after ``calls`` good calls."""

    def __init__(self, calls):
        self.calls, self.loss = calls, torch.nn.CrossEntropyLoss()

    def __call__(self, logits, labels):
        self.calls -= 1
        return self.loss(logits, labels) if self.calls >= 0 else logits.sum() * float("nan")


@pytest.mark.slow
def test_nan_loss_raises_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, fashion_root):
    cfg = run_config(tmp_path, fashion_root, "policy=none", "scale.train_epochs=2")
    run = TrainRun(cfg)
    run.criterion = _NanAfter(calls=8 + 1 + 2)  # epoch 1: 8 steps and 1 test batch; epoch 2: 2 steps, then NaN
    with pytest.raises(FloatingPointError, match="epoch 2, step 3"):
        run.run()
    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt")["epoch"] == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "FAILED"
    resumed = TrainRun(cfg).run()
    assert resumed["status"] == "FINISHED" and resumed["epochs"] == 2
