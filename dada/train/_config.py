"""Schema of the evaluation app's config (``conf/train.yaml``); values live in ``conf/``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig, OmegaConf

from dada.config import CONF_DIR, SEED_MAX, ConfigValueError, RunConfig, check_run_config, check_schema, valid

RECIPE_DIR = CONF_DIR / "recipe"


@dataclass
class RecipeConfig:
    """Section 4.1 "Policy Evaluation": Fast AA's training hyper-parameters (``conf/recipe/``)."""

    epochs: int = valid(">= 1")
    batch_size: int = valid(">= 1")  # global: split over the ranks under torchrun
    lr: float = valid("> 0")  # the lr before warmup; the peak is lr * warmup_multiplier
    weight_decay: float = valid(">= 0")
    momentum: float = valid("[0, 1)")
    nesterov: bool = MISSING
    grad_clip: float = valid(">= 0")  # the gradients' largest L2 norm; 0: no clipping
    schedule: str = MISSING  # cosine | multistep, stepped per iteration
    warmup_multiplier: float = valid(">= 1", 1.0)  # GradualWarmupScheduler: lr ramps to lr * multiplier (from 0 at 1)
    warmup_epochs: float = valid(">= 0", 0.0)
    milestones: list[float] = valid("> 0", [])  # multistep: epochs after the warmup
    gamma: float = valid("(0, 1]", 0.1)  # multistep decay factor
    crop_padding: int = valid(">= 0", 4)  # pad-and-crop of the 32x32 sets
    color_jitter: float = valid(">= 0", 0.0)  # ImageNet: brightness, contrast and saturation strength
    lighting: float = valid(">= 0", 0.0)  # ImageNet: standard deviation of the PCA lighting noise
    eval_batch_size: int = valid(">= 1", 1024)


@dataclass
class PolicyConfig:
    """What runs between crop+flip and normalisation; ``cutout: false`` is the paper's "Baseline"."""

    name: str = MISSING  # none | cutout | autoaugment | randaugment | trivialaugment | random | dada | fastaa
    # dada: a shipped name, a search's run folder or a policy.json; autoaugment, fastaa: cifar10 | svhn | imagenet
    source: Optional[str] = None
    num_ops: Optional[int] = valid(">= 1", None)  # randaugment: N; random: operations per sub-policy
    magnitude: Optional[int] = valid(">= 0", None)  # randaugment: M
    num_sub_policies: Optional[int] = valid(">= 1", None)  # random
    cutout: bool = True  # the data set's Cutout after normalisation
    before_crop: bool = False  # run the policy before crop and flip (Fast AA's code), not after (DADA's)
    on_device: Optional[bool] = None  # null: batched on the device whenever the policy and the data allow


@dataclass
class TrainAppConfig(RunConfig):
    recipe: RecipeConfig = MISSING
    policy: PolicyConfig = MISSING
    experiment_name: str = "train_${dataset.name}_${model.name}"  # run_dir's experiment (experiments set their own)
    variant_name: str = "${policy.name}${tag}"  # run_dir's variant: the policy, or a table's column
    subset_seed: int = valid(f"[0, {SEED_MAX}]", 0)  # scaled-down runs: the same subsets for every seed and policy
    amp: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # CUDA only
    compile: bool = False  # torch.compile the model
    num_workers: int = valid(">= 0", 4)  # DataLoader workers, where a loader is used (0: in the process)
    train_images: Optional[int] = valid(">= 1", None)  # a stratified training subset (subset_seed); null: all
    test_images: Optional[int] = valid(">= 1", None)  # a stratified subset of the test set; null: all of it
    test_every: int = valid(">= 1", 1)  # test every N epochs and after the last
    tag: str = ""  # appended to the run name, e.g. tag=-relax-seed1


def validate(cfg: DictConfig) -> None:
    """Refuse a missing recipe, unknown keys and out-of-range values at start-up, naming the key and the valid range."""
    if OmegaConf.is_missing(cfg, "recipe"):
        raise ConfigValueError(_no_recipe_message(cfg))
    check_schema(cfg, TrainAppConfig)
    check_run_config(cfg)


def _no_recipe_message(cfg: DictConfig) -> str:
    default = f"{cfg.model.name}-{cfg.dataset.name}"
    available = sorted(path.stem for path in RECIPE_DIR.glob("*.yaml") if path.stem != "base")
    chosen = HydraConfig.get().runtime.choices.get("recipe") if HydraConfig.initialized() else None
    chosen = chosen or (default if default not in available else None)  # outside the app only the default is known
    if chosen == default:
        problem = (
            f"no recipe for model={cfg.model.name} on dataset={cfg.dataset.name}: the recipe defaults to "
            f"<model>-<dataset>, and conf/recipe/{default}.yaml does not exist"
        )
    else:
        problem = f"no recipe {chosen or 'of the name chosen'}: conf/recipe/ does not hold it"
    example = next((name for name in available if name.endswith(f"-{cfg.dataset.name}")), available[0])
    return (
        f"{problem}. Choose one with recipe=<name>, e.g. recipe={example}; available: {', '.join(available)}. "
        f"To train a small network on a paper recipe, keep model= and set scale.model=<small network> instead"
    )
