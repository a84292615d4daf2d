"""The search: Eq. 17-19 against exact autograd, the policy moves, a seed means the same policy."""

import json
from pathlib import Path

import pytest
import torch
from conftest import CONF_DIR, compose_config, write_image_folder
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

from dada import checkpoint
from dada.search import SearchSpace, virtual_step
from dada.search._config import validate
from dada.search.bilevel import finite_difference
from dada.search.loop import SearchRun

DATASETS = sorted(path.stem for path in (Path(CONF_DIR) / "dataset").glob("*.yaml"))


def _tiny_problem():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5)
    ).double()
    images = torch.rand(8, 3, 8, 8, dtype=torch.float64)
    labels = torch.randint(5, (8,))
    d = torch.tensor([0.7, 1.3], dtype=torch.float64, requires_grad=True)  # stands in for the policy
    return model, images, labels, d


def _augmented(images, d):
    return images * d[0] + d[1] * images.mean(dim=(2, 3), keepdim=True)


def test_finite_difference_matches_double_backward():
    """Eq. 19 against the exact -ζ ∇²_{d,w} L_train · v of Eq. 18: relative error < 1e-2."""
    model, images, labels, d = _tiny_problem()
    params = dict(model.named_parameters())
    direction = [torch.randn_like(p) for p in params.values()]
    lr = 0.1
    objective = finite_difference(model, params, {}, direction, _augmented(images, d), labels, lr, 0.01)
    objective = objective.objectives().sum()
    (approximate,) = torch.autograd.grad(objective, d)

    loss = torch.nn.functional.cross_entropy(model(_augmented(images, d)), labels)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    (exact,) = torch.autograd.grad(sum((g * v).sum() for g, v in zip(grads, direction)), d)
    exact = -lr * exact
    assert (approximate - exact).norm() / exact.norm() < 1e-2


def test_virtual_step_is_the_next_sgd_step():
    """Eq. 17 with momentum and weight decay equals what SGD would do next."""
    model, images, labels, d = _tiny_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for _ in range(2):  # build a momentum buffer first
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        unrolled = virtual_step(dict(model.named_parameters()), grads, optimizer, lr=0.05)
        optimizer.step()
        for name, weight in model.named_parameters():
            torch.testing.assert_close(unrolled[name], weight.detach(), rtol=1e-12, atol=1e-12)


def test_search_space_defaults_follow_official_code():
    space = SearchSpace()
    assert space.num_sub_policies == 105 and space.ops_per_sub_policy == 2
    assert torch.allclose(space.weights(), torch.full((105,), 1 / 105))
    assert (space.probability == 0.5).all() and (space.magnitude == 0.5).all()
    assert SearchSpace(ordered=True).num_sub_policies == 210
    policy = space.export(25)
    assert len(policy) == 25 and policy.sub_policies[0].weight == pytest.approx(1 / 105)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["gumbel", "relax", "reinforce"])
def test_smoke_search_moves_the_policy(search_config, estimator, tmp_path):
    """The official code's issue #24: α and β must leave their initial values.

    Two epochs: at m = 0.5 nine of the 15 ops are the identity (Fast AA's ranges), so a gate's
    straight-through gradient is zero until a sub-policy with an op that changes the image is drawn.
    """
    summary = SearchRun(search_config(f"estimator={estimator}", "scale.search_epochs=2")).run()
    space = SearchSpace()
    space.load_state_dict(checkpoint.load(tmp_path / "run" / "checkpoint.pt")["space"])
    assert (space.alpha - 1e-3).abs().max() > 1e-4
    assert (space.probability - 0.5).abs().max() > 1e-4
    assert (space.magnitude - 0.5).abs().max() > 1e-4
    assert summary["cost"]["unit"] == "CPU-hours" and summary["cost"]["search_device_hours"] > 0
    assert len(json.loads((tmp_path / "run" / "policy.json").read_text())["sub_policies"]) == 25
    assert (tmp_path / "run" / "figures").is_dir()


@pytest.mark.slow
def test_first_order_mode_moves_the_policy(search_config, tmp_path):
    SearchRun(search_config("search.mode=first_order", "estimator=gumbel")).run()
    space = SearchSpace()
    space.load_state_dict(checkpoint.load(tmp_path / "run" / "checkpoint.pt")["space"])
    assert (space.alpha - 1e-3).abs().max() > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["gumbel", "relax"])
def test_per_image_sampling_moves_the_policy(search_config, estimator, tmp_path):
    SearchRun(search_config("search.sampling=image", f"estimator={estimator}")).run()
    space = SearchSpace()
    space.load_state_dict(checkpoint.load(tmp_path / "run" / "checkpoint.pt")["space"])
    assert (space.alpha - 1e-3).abs().max() > 1e-4 and (space.probability - 0.5).abs().max() > 1e-4


@pytest.mark.slow
def test_same_seed_same_policy(search_config, tmp_path):
    first = search_config("estimator=relax", f"run_dir={tmp_path}/a")
    second = search_config("estimator=relax", f"run_dir={tmp_path}/b")
    SearchRun(first).run()
    SearchRun(second).run()
    assert (tmp_path / "a" / "policy.json").read_text() == (tmp_path / "b" / "policy.json").read_text()
    summary = SearchRun(first).run()  # finished: a no-op that returns the summary
    assert summary["seed"] == 0


@pytest.mark.parametrize("dataset", DATASETS)
def test_search_recipe_composes_for_every_data_set(dataset):
    """conf/search/<dataset>.yaml lists conf/search/_base.yaml: every key set, the shared values, the set's own."""
    required = ["dataset.root=mine", "dataset.num_classes=5"] if dataset == "folder" else []  # the user's data
    cfg = compose_config("search", [f"dataset={dataset}", "scale=paper", "run_dir=unused", *required])
    validate(cfg)
    assert not OmegaConf.missing_keys(cfg.search) and not OmegaConf.missing_keys(cfg.estimator)
    recipe, own = cfg.search, OmegaConf.load(Path(CONF_DIR) / "search" / f"{dataset}.yaml")
    assert recipe.epochs == 20 and recipe.top_k == 25 and recipe.crop_padding == 4
    assert list(recipe.policy_betas) == [0.5, 0.999] and cfg.estimator.temperature == 0.5
    assert all(recipe[key] == value for key, value in own.items() if key != "defaults")


def test_bad_config_key_fails_fast(search_config):
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="bogus"):
        search_config("search.bogus=1")


def test_bad_mode_is_refused(search_config):
    with pytest.raises(ValueError, match="unrolled"):
        SearchRun(search_config("search.mode=twice"))


@pytest.mark.slow
def test_search_on_an_image_folder_keeps_a_subset_of_classes(search_config, tmp_path):
    """Reduced ImageNet's protocol on an image folder: decode only the chosen images, a head per kept class."""
    write_image_folder(tmp_path / "data" / "imagenet" / "train", [f"n{k:02d}" for k in range(4)], per_class=24)
    config = search_config(
        "dataset=imagenet",
        f"dataset.root={tmp_path / 'data'}",
        "dataset.num_classes=4",
        "dataset.search_classes=2",
        "search.class_list=null",  # two random classes of the four, not the official 120 of ImageNet's 1000
        "dataset.image_size=16",
        "dataset.search_pipeline.val_resize=20",
        "scale.search_images=48",
        "scale.batch_size=8",
    )
    run = SearchRun(config)
    head = [module for module in run.model.modules() if isinstance(module, torch.nn.Linear)][-1]
    assert head.out_features == 2
    summary = run.run()
    assert summary["status"] == "FINISHED"
    assert len(json.loads((tmp_path / "run" / "policy.json").read_text())["sub_policies"]) == 25


def test_image_folder_with_other_class_count_is_refused(search_config, tmp_path):
    write_image_folder(tmp_path / "mine" / "train", ["a", "b", "c"], per_class=2)
    config = search_config("dataset=folder", f"dataset.root={tmp_path / 'mine'}", "dataset.num_classes=5")
    with pytest.raises(ValueError, match="dataset.num_classes=3"):
        SearchRun(config).run()
