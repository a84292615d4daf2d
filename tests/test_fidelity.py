"""Each point where the paper's text, the official code and this suite differ (FIDELITY.md rows), one test each."""

import dataclasses
import itertools
import json
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import compose_config

from dada import data, estimators, models, transforms
from dada.search import SearchSpace
from dada.search.augment import SearchInputs, apply_fired, on_network_input
from dada.search.bilevel import BiLevelOptimizer
from dada.search.schedule import epoch_batches, network_schedule, steps_per_epoch
from dada.search.variant import VARIANTS, get_variant
from dada.train.pipeline import DeviceBatches, ShardedBatchSampler, _pil_train_transform
from dada.train.policies import Augmentation

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dada-official-policies.json"
MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
TAU = 0.5  # the relaxation's temperature in these tests (the paper's is in conf/estimator/)
FD_EPSILON = 0.01  # Eq. 19's step (conf/search/_base.yaml: search.fd_epsilon)


class Recorder(torch.nn.Module):
    """A tiny network that keeps every input it is called on (functional_call goes through forward)."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.Tanh(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, 5),
        )
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.net(x)


def _optimizer(variant: str, estimator: str = "gumbel", cutout: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    model, space = Recorder(), SearchSpace()
    estimator = estimators.create(
        estimator,
        num_categories=105,
        num_gates=210,
        temperature=TAU,
        boundary="straight_through" if variant == "paper" else "freeze",
    )
    generator = torch.Generator().manual_seed(seed)
    official = get_variant(variant)
    inputs = SearchInputs(space, MEAN, STD, cutout, generator, official=official.on_network_input)
    network = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    policy = torch.optim.Adam(list(space.parameters()) + list(estimator.parameters()), lr=5e-3, betas=(0.5, 0.999))
    return BiLevelOptimizer(model, space, estimator, network, policy, 5.0, inputs, FD_EPSILON, official), generator


def _batches(seed: int = 1):
    torch.manual_seed(seed)
    return ((torch.rand(6, 3, 10, 10), torch.randint(5, (6,))), (torch.rand(6, 3, 10, 10), torch.randint(5, (6,))))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_validation_batch_is_only_normalised(variant):
    """The bug fixed: L_val saw Cutout (and could see the policy). The official transform_test normalises only."""
    optimizer, generator = _optimizer(variant, cutout=6)
    train, val = _batches()
    optimizer.step(train, val, generator)
    expected = transforms.normalize(val[0], MEAN, STD)
    assert torch.equal(optimizer.model.inputs[1], expected)  # calls: train, val at w', then w+ and w-


def test_zeta_scales_the_paper_gradient_only():
    """Eq. 19's ζ: paper multiplies the hypergradient by the network lr; official architect.py drops it."""
    results = {}
    for variant in ("paper", "official"):
        optimizer, generator = _optimizer("official")  # the same path but for ζ
        optimizer.variant = dataclasses.replace(VARIANTS["official"], scale_by_lr=variant == "paper")
        results[variant] = optimizer.step(*_batches(), generator)
    for group in ("grad_alpha", "grad_probability", "grad_magnitude"):
        paper, official = getattr(results["paper"], group), getattr(results["official"], group)
        assert official.abs().max() > 0
        torch.testing.assert_close(paper, 0.1 * official, rtol=1e-5, atol=1e-9)


def test_official_relax_difference_cancels_the_control_variate():
    """Official: RELAX(f+) - RELAX(f-) with one z, z~, c_φ is scale·(f+ - f-)·∇log p, whatever c_φ is."""
    torch.manual_seed(3)
    relax = estimators.create("relax", num_categories=7, num_gates=5, temperature=TAU, hidden_size=16).double()
    for parameter in relax.surrogate.parameters():  # a random, far from zero control variate
        torch.nn.init.normal_(parameter, std=2.0)
    generator = torch.Generator().manual_seed(0)
    sample = relax.sample(torch.randn(7, dtype=torch.float64), torch.rand(5, dtype=torch.float64), generator=generator)
    plus, minus, scale = (torch.tensor(v, dtype=torch.float64) for v in (2.31, 2.27, -50.0))
    out = relax.difference_of_estimates([sample], [plus], [minus], scale)
    score_alpha, score_beta = relax.score(sample)
    torch.testing.assert_close(out.grad_alpha, scale * (plus - minus) * score_alpha, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.grad_beta, scale * (plus - minus) * score_beta, rtol=1e-10, atol=1e-10)
    combined = relax.gradients(sample, scale * (plus - minus))  # the paper reading keeps c_φ active
    assert (combined.grad_alpha - out.grad_alpha).abs().max() > 1e-3


def test_official_relax_trains_phi_on_the_difference_of_variance_gradients():
    torch.manual_seed(4)
    relax = estimators.create("relax", num_categories=7, num_gates=5, temperature=TAU, hidden_size=16)
    sample = relax.sample(torch.randn(7), torch.rand(5), generator=torch.Generator().manual_seed(1))
    plus, minus, scale = torch.tensor(1.5), torch.tensor(1.2), torch.tensor(-3.0)
    relax.difference_of_estimates([sample], [plus], [minus], scale)
    got = [p.grad.clone() for p in relax.surrogate.parameters()]
    expected = []
    for loss in (plus, minus):
        relax.zero_grad()
        relax.gradients(sample, loss)
        expected.append([p.grad.clone() for p in relax.surrogate.parameters()])
    for g, e_plus, e_minus in zip(got, *expected):
        torch.testing.assert_close(g, scale * (e_plus - e_minus), rtol=1e-4, atol=1e-6)


def _official_mixture(x, space, sample):
    """A direct transcription of search_gumbel/model_search.py (MixedAugment, DifferentiableAugment)."""
    k = int(sample.category)
    probability = sample.gates.view(space.num_sub_policies, -1)
    index = sum(int(b.item() > 0.5) << i for i, b in enumerate(probability[k]))
    total = 0
    for j, weight in enumerate(sample.category_weights):
        if j != k:
            total = total + weight
            continue
        com_image, images, adds = 0, x, 0
        for selection in range(2**space.ops_per_sub_policy):
            trans_probability = 1
            for i in range(space.ops_per_sub_policy):
                if selection & (1 << i):
                    trans_probability = trans_probability * probability[k, i]
                    if selection == index:
                        images = images - space.magnitude[k, i]
                        adds = adds + space.magnitude[k, i]
                else:
                    trans_probability = trans_probability * (1 - probability[k, i])
            if selection == index:
                com_image = com_image + trans_probability * (images.detach() + adds)
            else:
                com_image = com_image + trans_probability
        total = total + weight * com_image
    return total


@pytest.mark.parametrize("seed", range(4))
def test_official_gumbel_path_matches_the_official_loops(seed):
    """``1 + w_c T (x - 1)`` has the official value and gradients w.r.t. α, β and m."""
    space = SearchSpace()
    with torch.no_grad():
        space.magnitude.uniform_(0.2, 0.8)
    gumbel = estimators.create("gumbel", num_categories=105, num_gates=210, temperature=TAU)
    torch.manual_seed(seed)
    sample = gumbel.sample(torch.randn(105), torch.rand(210), generator=torch.Generator().manual_seed(seed))
    x = torch.randn(1, 3, 4, 4)
    weights = torch.randn(1, 3, 4, 4)
    ours = (on_network_input(x, space, [sample]) * weights).sum()
    theirs = (_official_mixture(x, space, sample) * weights).sum()
    torch.testing.assert_close(ours, theirs)
    leaves = [sample.alpha, sample.beta, space.magnitude]
    options = {"allow_unused": True, "materialize_grads": True}  # m is unused when no gate fired
    for a, b in zip(
        torch.autograd.grad(ours, leaves, retain_graph=True, **options), torch.autograd.grad(theirs, leaves, **options)
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_official_ops_use_the_clamped_magnitude_as_constants():
    space = SearchSpace()
    relax = estimators.create("relax", num_categories=105, num_gates=210, temperature=TAU)
    sample = relax.sample(space.alpha, torch.ones(210), generator=torch.Generator().manual_seed(0))
    images = torch.rand(2, 3, 8, 8)
    outputs = []
    for magnitude in (1.7, 1.0):  # drifted past 1, as the official code lets m do, and its clamp
        with torch.no_grad():
            space.magnitude.fill_(magnitude)
        outputs.append(apply_fired(images, space, [sample], generator=torch.Generator().manual_seed(5)))
    assert not outputs[0].requires_grad
    torch.testing.assert_close(outputs[0], outputs[1])
    assert (outputs[0] - images).abs().max() > 0


def test_boundary_freeze_zeroes_the_gradient_outside_the_interval():
    """Official: β's gradient goes through a plain clamp to [ε, 1-ε]; the paper reading passes it through."""
    beta = torch.tensor([0.3, 1.0, 0.0])
    frozen = estimators.create("reinforce", num_categories=2, num_gates=3, temperature=TAU, boundary="freeze")
    passing = estimators.create("reinforce", num_categories=2, num_gates=3, temperature=TAU)
    sample = frozen.sample(torch.zeros(2), beta, generator=torch.Generator().manual_seed(0))
    _, frozen_beta = frozen.score(sample)
    _, passing_beta = passing.score(sample)
    assert frozen_beta[0] != 0 and (frozen_beta[1:] == 0).all()
    assert (passing_beta != 0).all()


@pytest.mark.parametrize("variant, projected", [("paper", True), ("official", False)])
def test_projection_of_probability_and_magnitude(variant, projected):
    optimizer, generator = _optimizer(variant, estimator="relax")
    with torch.no_grad():
        optimizer.space.magnitude.fill_(1.2)
        optimizer.space.probability.fill_(1.1)
    optimizer.step(*_batches(), generator)
    inside = bool((optimizer.space.magnitude <= 1).all() and (optimizer.space.probability <= 1).all())
    assert inside == projected


def test_first_order_mode_warns():
    optimizer, _ = _optimizer("official")
    with pytest.warns(UserWarning, match="rewards weaker augmentation"):
        BiLevelOptimizer(
            optimizer.model,
            optimizer.space,
            optimizer.estimator,
            optimizer.network_optimizer,
            optimizer.policy_optimizer,
            5.0,
            optimizer.inputs,
            FD_EPSILON,
            mode="first_order",
        )


def test_unknown_variant_lists_the_choices():
    with pytest.raises(ValueError, match="official, paper"):
        get_variant("both")


def test_default_variant_is_official():
    assert compose_config("search", ["dataset=cifar10"]).search.variant == "official"


def _genotype_settings(name: str) -> dict:
    match = re.search(
        r"_(\d+)_(\d+)_awd([\dp]+)_alr([\dp]+)_cutout_(\d+)_lr([\dp]+)_wd([\dp]+)_temp_([\dp]+)_(\d+)$", name
    )
    number = [float(v.replace("p", ".")) for v in match.groups()]
    keys = (
        "batch_size",
        "epochs",
        "policy_weight_decay",
        "policy_lr",
        "cutout",
        "lr",
        "weight_decay",
        "temperature",
        "top_k",
    )
    return dict(zip(keys, number))


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"no reference file at {REFERENCE}")
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "svhn", "imagenet"])
def test_search_settings_follow_the_released_genotype_names(dataset):
    genotype = json.loads(REFERENCE.read_text())["policies"][dataset]["genotype"]
    expected = _genotype_settings(genotype)
    config = compose_config("search", [f"experiment=search_{dataset}", "scale=paper"])
    cutout = config.search.cutout if config.search.cutout is not None else config.dataset.cutout
    got = {
        **{key: float(config.search[key]) for key in expected if key in config.search and key != "cutout"},
        "cutout": float(cutout),
        "temperature": float(config.estimator.temperature),
    }
    assert got == expected
    network = {"cifar10": "wrn40_2", "cifar100": "wrn40_2", "svhn": "wrn28_10", "imagenet": "resnet50"}[dataset]
    assert config.model.name == network and network.replace("wrn", "wresnet") in genotype


def test_official_gumbel_value_is_the_augmented_input():
    """In value the mixture is the identity: the straight-through weights are one-hot."""
    space = SearchSpace()
    gumbel = estimators.create("gumbel", num_categories=105, num_gates=210, temperature=TAU)
    x = torch.randn(3, 3, 4, 4)
    for seed in range(3):
        samples = [
            gumbel.sample(
                space.alpha, space.probabilities().flatten(), generator=torch.Generator().manual_seed(seed + i)
            )
            for i in range(3)
        ]
        torch.testing.assert_close(on_network_input(x, space, samples), x)


def test_gate_patterns_cover_every_subset():
    """The collapse of the 2^k pattern sum relies on Σ_s T_s = Π (g + 1 - g) = 1; check it with autograd."""
    g = torch.rand(3, requires_grad=True)
    total = sum(
        torch.stack([g[i] if bit else 1 - g[i] for i, bit in enumerate(bits)]).prod()
        for bits in itertools.product([0, 1], repeat=3)
    )
    (grad,) = torch.autograd.grad(total, g)
    torch.testing.assert_close(total, torch.tensor(1.0))
    assert grad.abs().max() < 1e-6


# Row 21, the WRN. Parameter counts of the official definition, WideResNet(depth, k, dropout_rate=0.0,
# num_classes=10) of VDIGPKU/DADA search_relax/networks/wideresnet.py:44-60 (= Fast AA's networks/wideresnet.py),
# counted on 2026-12-06 from that file. Its convolutions' biases are the only parameters it has beyond ours.
OFFICIAL_WRN_PARAMETERS = {"wrn10_1": 78_186, "wrn40_2": 2_246_474, "wrn28_10": 36_489_290}
ZAGORUYKO_WRN_PARAMETERS = {"wrn10_1": 77_850, "wrn40_2": 2_243_546, "wrn28_10": 36_479_194}


@pytest.mark.parametrize("name", sorted(OFFICIAL_WRN_PARAMETERS))
@pytest.mark.parametrize("variant", ["official", "zagoruyko"])
def test_wrn_parameter_count_matches_its_definition(name, variant):
    expected = (OFFICIAL_WRN_PARAMETERS if variant == "official" else ZAGORUYKO_WRN_PARAMETERS)[name]
    with torch.device("meta"):  # WRN-28-10 holds 36 M parameters: count them without allocating
        model = models.create(name, 10, variant=variant)
    assert sum(parameter.numel() for parameter in model.parameters()) == expected


def test_official_wrn_is_the_default():
    assert models.create("wrn10_1", 10).variant == "official"
    for app in ("search", "train"):
        assert compose_config(app, ["model=wrn28_10"]).model.kwargs.variant == "official"


@pytest.mark.parametrize("variant", ["official", "zagoruyko"])
def test_wrn_biases_stride_and_momentum(variant):
    official = variant == "official"
    model = models.create("wrn10_1", 10, variant=variant)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all((conv.bias is not None) == official for conv in convolutions)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {norm.momentum for norm in norms} == {0.9 if official else 0.1}
    downsampling = model.blocks[1]  # the first block of stage 2 halves the resolution
    strides = ((1, 1), (2, 2)) if official else ((2, 2), (1, 1))
    assert (downsampling.conv1.stride, downsampling.conv2.stride) == strides
    assert (model.head[-1].bias.abs().sum() > 0) == official  # PyTorch's default init; He init zeroes it


@pytest.mark.parametrize("variant", ["official", "zagoruyko"])
def test_wrn_projection_reads_the_raw_or_the_activated_input(variant):
    torch.manual_seed(0)
    block = models.create("wrn10_1", 10, variant=variant).blocks[1]
    seen = {}
    block.projection.register_forward_pre_hook(lambda module, args: seen.update(projected=args[0]))
    x = torch.randn(2, 16, 8, 8)
    block(x)
    activated = torch.relu(block.norm1(x))
    assert torch.equal(seen["projected"], x if variant == "official" else activated)


def test_official_wrn_running_statistics_follow_the_last_batch():
    """momentum=0.9 in PyTorch's convention: running = 0.1 * old + 0.9 * batch (official wideresnet.py:24)."""
    torch.manual_seed(0)
    model = models.create("wrn10_1", 10)
    x = torch.randn(8, 3, 8, 8) + 3.0
    model(x)
    stem_output = model.stem(x)
    expected = 0.1 * 0.0 + 0.9 * stem_output.mean(dim=(0, 2, 3))
    torch.testing.assert_close(model.blocks[0].norm1.running_mean, expected, rtol=1e-5, atol=1e-6)


# Rows 22-23: the search's epochs (VDIGPKU/DADA search_relax/dataset.py:342-351, train_search_paper.py:160-162).
@pytest.mark.parametrize("images, batch, official_steps", [(2000, 128, 16), (2000, 32, 63)])
def test_official_search_keeps_the_last_partial_batch(images, batch, official_steps):
    config = compose_config("search", ["dataset=cifar10"])
    assert config.search.drop_last is False
    generator = torch.Generator().manual_seed(0)
    batches = epoch_batches(images, batch, generator, torch.device("cpu"), drop_last=False)
    assert len(batches) == steps_per_epoch(images, batch, drop_last=False) == official_steps
    assert sorted(torch.cat(batches).tolist()) == list(range(images))  # every image once, the last batch partial
    assert steps_per_epoch(images, batch, drop_last=True) == official_steps - 1


@pytest.mark.parametrize("step_first", [True, False])
def test_official_schedule_trains_epoch_e_at_lr_of_e_plus_one(step_first):
    assert compose_config("search", ["dataset=cifar10"]).search.lr_step_first is True
    epochs, lr, lr_min = 5, 0.1, 0.001
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=lr)
    schedule = network_schedule(optimizer, epochs, lr_min, step_first)
    trained_at = []
    for _ in range(epochs):
        trained_at.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    cosine = [lr_min + (lr - lr_min) * (1 + math.cos(math.pi * t / epochs)) / 2 for t in range(epochs + 1)]
    expected = cosine[1:] if step_first else cosine[:-1]
    assert trained_at == pytest.approx(expected, rel=1e-12)
    assert (trained_at[-1] == pytest.approx(lr_min)) == step_first


def test_imagenet_search_keeps_the_official_120_classes():
    """Rows 10 and 15: the fixed idx120 of VDIGPKU/DADA search_relax/dataset.py:230, shipped in dada/reference/."""
    config = compose_config("search", ["experiment=search_imagenet"])
    classes = data.load_class_list(config.search.class_list)
    assert len(set(classes)) == len(classes) == config.dataset.search_classes == 120
    assert classes == sorted(classes) and classes[:3] == [16, 23, 52] and classes[-1] == 959


class _SeenBatches(torch.nn.Module):
    """An identity policy that keeps the batches it is applied to."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def apply_batch(self, images, generator=None):
        self.seen.append(images.clone())
        return images


@pytest.mark.parametrize("policy, before_crop", [("fastaa", True), ("dada", False), ("trivialaugment", False)])
def test_fast_aa_policy_runs_before_crop_and_flip(policy, before_crop):
    """Row 14: Fast AA's data.py:71-88 inserts its policy at 0, before RandomCrop and flip; DADA's goes after."""
    config = compose_config("train", [f"policy={policy}"])
    assert config.policy.before_crop is before_crop
    recorder = _SeenBatches()
    augmentation = Augmentation(policy, None, recorder, True, False, before_crop)
    images = data.LabeledImages(torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8), torch.arange(8), 8, "test")
    sampler = ShardedBatchSampler(8, 8, torch.Generator().manual_seed(0))
    batches = DeviceBatches(images, sampler, augmentation, 4, torch.Generator().manual_seed(0), torch.device("cpu"))
    next(iter(batches))
    order = ShardedBatchSampler(8, 8, torch.Generator().manual_seed(0)).epoch_indices()[0]  # the same permutation
    assert torch.equal(recorder.seen[0], images.images[order]) == before_crop  # raw images, or cropped and flipped
    plan = _pil_train_transform(augmentation, config.recipe, 8, from_disk=False).transforms
    assert (plan[0] is recorder) == before_crop and (plan[2] is recorder) != before_crop


def test_resnet50_matches_fast_aa():
    """Row 27: Fast AA's ResNet('imagenet', 50, bottleneck=True) (networks/resnet.py:84-132), counted 2026-12-06."""
    with torch.device("meta"):
        model = models.create("resnet50", 1000)
    assert sum(parameter.numel() for parameter in model.parameters()) == 25_557_032
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)  # stride in the 3x3
