"""Gradient estimators against toy problems whose gradients are known in closed form."""

import itertools

import pandas as pd
import pytest
import torch

from dada.estimators import ESTIMATORS, EstimatorOutput, EstimatorSample, create, toy

NUM_SAMPLES = 2000
TOLERANCE_SE = 4.0  # a coordinate fails by chance with p ~ 6e-5
TAU = 0.5  # the relaxation's temperature in these tests (the paper's is in conf/estimator/)


@pytest.fixture(autouse=True)
def single_thread():
    """The tensors here are tiny: intra-op threads only add overhead (tanh's is large on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(name: str, problem: toy.ToyProblem, seed: int = 0, **kwargs):
    torch.manual_seed(seed)  # the surrogate's initial weights
    return create(name, problem.alpha.numel(), problem.beta.numel(), TAU, **kwargs)


def estimates(name: str, problem: toy.ToyProblem, num_samples: int = NUM_SAMPLES, seed: int = 1) -> torch.Tensor:
    """[N, K + G] gradient estimates from a fresh estimator."""
    generator = torch.Generator().manual_seed(seed)
    grad_alpha, grad_beta = toy.draw_estimates(make(name, problem), problem, num_samples, generator)
    return torch.cat([grad_alpha, grad_beta], dim=1)


def exact(problem: toy.ToyProblem) -> torch.Tensor:
    return torch.cat(problem.exact_gradients())


def z_scores(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|mean - target| in standard errors; coordinates with zero spread must match exactly (SE floored at 1e-6)."""
    standard_error = (samples.std(dim=0) / samples.shape[0] ** 0.5).clamp_min(1e-6)
    return (samples.mean(dim=0) - target).abs() / standard_error


# --- the toy problems themselves -------------------------------------------------------------------------


def test_toy_expected_loss_matches_enumeration():
    problem = toy.joint_problem(num_categories=3, num_gates=3, dtype=torch.float64)
    pi = torch.softmax(problem.alpha, dim=-1)
    total = torch.zeros((), dtype=torch.float64)
    for category, *gates in itertools.product(range(3), (0, 1), (0, 1), (0, 1)):
        b = torch.tensor(gates, dtype=torch.float64)
        probability = pi[category] * torch.prod(torch.where(b > 0, problem.beta, 1 - problem.beta))
        total += probability * (problem.table[category] + (b - problem.targets).pow(2).sum())
    torch.testing.assert_close(problem.expected_loss(problem.alpha, problem.beta), total)


def test_toy_exact_gradients_match_closed_form():
    categorical, bernoulli = toy.categorical_problem(), toy.bernoulli_problem()
    pi = torch.softmax(categorical.alpha, dim=-1)
    torch.testing.assert_close(
        categorical.exact_gradients()[0], pi * (categorical.table - (pi * categorical.table).sum())
    )
    torch.testing.assert_close(bernoulli.exact_gradients()[1], 1 - 2 * bernoulli.targets)


# --- unbiasedness and bias ---------------------------------------------------------------------------------


@pytest.mark.parametrize("problem_name", sorted(toy.PROBLEMS))
@pytest.mark.parametrize("name", ["relax", "reinforce"])
def test_unbiased_within_four_standard_errors(name, problem_name):
    problem = toy.PROBLEMS[problem_name]()
    scores = z_scores(estimates(name, problem), exact(problem))
    assert scores.max() < TOLERANCE_SE, f"{name} on {problem_name}: z-scores {scores.tolist()}"


@pytest.mark.parametrize("problem_name", ["bernoulli", "categorical"])
def test_straight_through_gumbel_is_biased(problem_name):
    problem = toy.PROBLEMS[problem_name]()
    scores = z_scores(estimates("gumbel", problem), exact(problem))
    assert scores.max() > TOLERANCE_SE, f"gumbel looks unbiased on {problem_name}: z-scores {scores.tolist()}"


def test_relax_variance_drops_after_training_surrogate():
    problem = toy.bernoulli_problem()
    estimator = make("relax", problem)

    def mean_variance() -> float:  # the same 500 samples each time
        grad_alpha, grad_beta = toy.draw_estimates(estimator, problem, 500, torch.Generator().manual_seed(7))
        return torch.cat([grad_alpha, grad_beta], dim=1).var(dim=0).mean().item()

    untrained = mean_variance()
    losses = toy.train_surrogate(estimator, problem, num_steps=300, generator=torch.Generator().manual_seed(3))
    trained = mean_variance()
    assert all(torch.isfinite(torch.tensor(losses)))
    assert trained < 0.5 * untrained, f"variance {untrained:.3g} -> {trained:.3g}"  # measured: about 0.01x


# --- RELAX's conditional re-sampling (Eq. 14-15) --------------------------------------------------------


def test_relax_conditional_sample_agrees_with_discrete_sample():
    problem = toy.joint_problem(num_categories=5, num_gates=8)
    estimator, generator = make("relax", problem), torch.Generator().manual_seed(0)
    for _ in range(200):
        sample = estimator.sample(problem.alpha, problem.beta, generator)
        assert sample.conditional_category_logits.argmax() == sample.category
        assert torch.equal((sample.conditional_gate_logits > 0).float(), sample.gates)


def test_relax_conditional_sample_has_the_unconditional_marginal():
    """Drawing q = H(z) and then z~ ~ p(z | q) must give z~ the law of z: compare the relaxed means."""
    problem = toy.joint_problem(num_categories=5, num_gates=4)
    estimator, generator = make("relax", problem), torch.Generator().manual_seed(0)
    relaxed, conditional = [], []
    for _ in range(4000):
        sample = estimator.sample(problem.alpha, problem.beta, generator)
        relaxed.append(estimator.relaxed_input(sample.category_logits, sample.gate_logits).detach())
        conditional.append(
            estimator.relaxed_input(sample.conditional_category_logits, sample.conditional_gate_logits).detach()
        )
    difference = torch.stack(relaxed) - torch.stack(conditional)
    assert z_scores(difference, torch.zeros(difference.shape[1])).max() < TOLERANCE_SE


def test_relax_accumulates_variance_gradient_into_surrogate():
    problem = toy.joint_problem()
    estimator = make("relax", problem)
    sample = estimator.sample(problem.alpha, problem.beta, torch.Generator().manual_seed(0))
    output = estimator.gradients(sample, problem.loss(sample))
    expected = torch.cat([output.grad_alpha, output.grad_beta]).pow(2).mean()
    torch.testing.assert_close(output.surrogate_loss, expected)
    assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in estimator.parameters())


# --- interface, shapes, validation, determinism ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_sample_and_gradient_shapes(name):
    num_categories, num_gates = 105, 210  # DADA's search space
    estimator = create(name, num_categories, num_gates, TAU)
    alpha, beta = torch.full((num_categories,), 1e-3, requires_grad=True), torch.full((num_gates,), 0.5)
    sample = estimator.sample(alpha, beta, torch.Generator().manual_seed(0))
    assert isinstance(sample, EstimatorSample) and sample.category.shape == () and sample.category.dtype == torch.long
    assert torch.equal(sample.category_weights.detach(), torch.nn.functional.one_hot(sample.category, 105).float())
    assert sample.gates.shape == (num_gates,) and set(sample.gates.detach().unique().tolist()) <= {0.0, 1.0}
    loss = (sample.category_weights * torch.arange(105.0)).sum() + sample.gates.sum()
    output = estimator.gradients(sample, loss)
    assert isinstance(output, EstimatorOutput)
    assert output.grad_alpha.shape == (num_categories,) and output.grad_beta.shape == (num_gates,)
    assert torch.isfinite(torch.cat([output.grad_alpha, output.grad_beta])).all()
    assert (output.surrogate_loss is not None) == (name == "relax")
    assert alpha.grad is None  # gradients are returned, never written into the caller's tensors
    assert name in repr(type(estimator)).lower() and "num_categories=105" in repr(estimator)


def test_probabilities_on_the_boundary_still_get_finite_gradients():
    estimator = create("reinforce", 1, 2, TAU)
    sample = estimator.sample(torch.zeros(1), torch.tensor([0.0, 1.0]), torch.Generator().manual_seed(0))
    assert sample.gates.tolist() == [0.0, 1.0]
    grad_beta = estimator.gradients(sample, torch.tensor(1.0)).grad_beta
    assert torch.isfinite(grad_beta).all() and grad_beta[0] < 0 < grad_beta[1]


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_deterministic_given_generator(name):
    problem = toy.joint_problem()
    first, second = (estimates(name, problem, num_samples=20, seed=5) for _ in range(2))
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_leaves_global_rng_alone_given_generator(name):
    problem = toy.joint_problem()
    estimator = make(name, problem)
    state = torch.get_rng_state()
    toy.draw_estimates(estimator, problem, 5, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)


def test_all_estimators_draw_the_same_discrete_sample_from_the_same_seed():
    problem = toy.joint_problem(num_categories=7, num_gates=9)
    draws = [
        make(name, problem).sample(problem.alpha, problem.beta, torch.Generator().manual_seed(4)) for name in ESTIMATORS
    ]
    for draw in draws[1:]:
        assert draw.category == draws[0].category and torch.equal(draw.gates.detach(), draws[0].gates.detach())


def test_reinforce_baseline_is_updated_after_use():
    problem = toy.bernoulli_problem()
    estimator = make("reinforce", problem, baseline_decay=0.5)
    generator = torch.Generator().manual_seed(0)
    sample = estimator.sample(problem.alpha, problem.beta, generator)
    score = estimator.score(sample)[1]
    torch.testing.assert_close(estimator.gradients(sample, torch.tensor(3.0)).grad_beta, 3.0 * score)
    assert estimator.baseline.item() == pytest.approx(3.0)  # bias-corrected: the first loss itself
    sample = estimator.sample(problem.alpha, problem.beta, generator)
    torch.testing.assert_close(estimator.gradients(sample, 5.0).grad_beta, 2.0 * estimator.score(sample)[1])
    assert estimator.baseline.item() == pytest.approx((0.25 * 3 + 0.5 * 5) / 0.75)


def test_create_rejects_unknown_name():
    with pytest.raises(ValueError, match="gumbel.*reinforce.*relax"):
        create("rebar", 3, 2, TAU)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_categories=0, num_gates=2, temperature=TAU),
        dict(num_categories=3, num_gates=-1, temperature=TAU),
        dict(num_categories=3, num_gates=2, temperature=0.0),
    ],
)
def test_create_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        create("relax", **kwargs)


def test_reinforce_rejects_bad_decay():
    with pytest.raises(ValueError, match="baseline_decay"):
        create("reinforce", 3, 2, TAU, baseline_decay=1.0)


@pytest.mark.parametrize(
    "alpha, beta",
    [
        (torch.zeros(4), torch.zeros(2)),
        (torch.zeros(3), torch.zeros(2, 1)),
        (torch.zeros(3, dtype=torch.long), torch.zeros(2)),
        ([0.0, 0.0, 0.0], torch.zeros(2)),
    ],
)
def test_sample_rejects_bad_parameters(alpha, beta):
    with pytest.raises(ValueError, match="alpha|beta"):
        create("gumbel", 3, 2, TAU).sample(alpha, beta)


def test_sample_rejects_a_generator_on_another_device():
    with pytest.raises(ValueError, match="generator"):
        alpha, beta = torch.zeros(3, device="meta"), torch.zeros(2, device="meta")
        create("gumbel", 3, 2, TAU).sample(alpha, beta, torch.Generator())


def test_gumbel_rejects_a_detached_loss():
    estimator = create("gumbel", 3, 2, TAU)
    sample = estimator.sample(torch.zeros(3), torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="autograd"):
        estimator.gradients(sample, torch.tensor(1.0))


def test_black_box_estimators_reject_a_non_scalar_loss():
    estimator = create("reinforce", 3, 2, TAU)
    sample = estimator.sample(torch.zeros(3), torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="scalar"):
        estimator.gradients(sample, torch.ones(2))


# --- analysis ---------------------------------------------------------------------------------------------


def test_analysis_writes_table_and_figure(tmp_path):
    from analysis.estimators import ESTIMATOR_LABELS, measure, write

    frame = measure(num_samples=50, training_steps=5, seed=0)
    assert isinstance(frame, pd.DataFrame)
    assert set(frame["estimator"]) == set(ESTIMATOR_LABELS)
    assert (frame["variance"] >= 0).all() and frame["bias"].notna().all()
    write(frame, tmp_path)
    for suffix in ("csv", "png", "pdf"):
        assert (tmp_path / f"estimators_toy.{suffix}").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "estimators_toy.csv")) == len(frame)


@pytest.mark.parametrize("name", ["gumbel", "reinforce", "relax"])
def test_gradients_many_is_the_sum_of_single_estimates(name):
    """One sample per image: the estimate for losses that add up is the sum of the per-sample estimates."""
    torch.manual_seed(0)
    alpha, beta = torch.randn(5), torch.rand(4)
    table, weights = torch.randn(5), torch.randn(4)
    generator = torch.Generator().manual_seed(1)
    many, single = create(name, 5, 4, TAU), create(name, 5, 4, TAU)
    single.load_state_dict(many.state_dict())
    samples = [many.sample(alpha, beta, generator) for _ in range(3)]
    losses = [(table * s.category_weights).sum() + (weights * s.gates).sum() for s in samples]
    total = many.gradients_many(samples, losses, retain_graph=True)
    parts = [single.gradients(s, loss, retain_graph=True) for s, loss in zip(samples, losses)]
    torch.testing.assert_close(total.grad_alpha, sum(p.grad_alpha for p in parts))
    torch.testing.assert_close(total.grad_beta, sum(p.grad_beta for p in parts))
