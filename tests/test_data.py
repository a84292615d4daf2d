"""dada.data: real Fashion-MNIST, tiny on-disk copies of CIFAR / SVHN / ImageFolder, and the search splits."""

import gzip
import pickle

import numpy as np
import pytest
import scipy.io
import torch
from conftest import write_image_folder
from torchvision.transforms import PILToTensor

from dada import data

NUM_FASHION_CLASSES = 10


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """Fashion-MNIST train and test, decompressed once into a temporary cache."""
    root = tmp_path_factory.mktemp("fashion-cache")
    return root, data.load_images("fashion-mnist", root, train=True), data.load_images("fashion-mnist", root, False)


def random_images(count, seed):
    return torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def write_pickle(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(content))


def write_cifar_batch(path, images, labels, label_key):
    """One batch as the CIFAR python files hold it: rows of 3072 bytes (R plane, G plane, B plane)."""
    write_pickle(path, {"data": images.reshape(len(images), -1).numpy(), label_key: labels.tolist()})


def write_svhn_split(path, images, digits):
    """One SVHN .mat file: X [32, 32, 3, N] uint8, y [N, 1] with label 10 for the digit 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.where(digits.numpy() == 0, 10, digits.numpy()).astype(np.uint8)[:, None]
    scipy.io.savemat(path, {"X": images.permute(2, 3, 1, 0).numpy(), "y": labels})


# Fashion-MNIST, the embedded default: real images


def test_fashion_mnist_shapes_and_balance(fashion):
    _, train, test = fashion
    assert train.images.shape == (60000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 3, 32, 32) and test.labels.dtype == torch.long
    assert torch.bincount(train.labels).tolist() == [6000] * NUM_FASHION_CLASSES
    assert train.num_classes == NUM_FASHION_CLASSES and train.name == "fashion-mnist"


def test_fashion_mnist_padding_and_channels(fashion):
    _, train, _ = fashion
    images = train.images
    assert images[:, :, :2].eq(0).all() and images[:, :, -2:].eq(0).all()
    assert images[..., :2].eq(0).all() and images[..., -2:].eq(0).all()
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])
    assert images[:1000, 0, 2:-2, 2:-2].float().mean() > 50  # real garments, not an empty canvas


def test_fashion_mnist_pixels_match_the_package_files(fashion):
    _, _, test = fashion
    with gzip.open(data.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz") as file:
        raw = np.frombuffer(file.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(data.FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz") as file:
        labels = np.frombuffer(file.read(), dtype=np.uint8, offset=8)
    assert torch.equal(test.images[:, 0, 2:-2, 2:-2], torch.from_numpy(raw.copy()))
    assert torch.equal(test.labels, torch.from_numpy(labels.astype(np.int64)))


def test_fashion_mnist_cache_is_reused_without_the_package(fashion, tmp_path):
    root, _, test = fashion
    images, labels = data.read_fashion_mnist(root, train=False, source_dir=tmp_path / "no-package")
    assert torch.equal(images, test.images) and torch.equal(labels, test.labels)
    assert not list((root / "FashionMNIST" / "raw").glob(".*"))  # no temporary files left behind


def test_missing_fashion_mnist_package_says_how_to_install(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.read_fashion_mnist(tmp_path / "cache", train=True, source_dir=tmp_path / "no-package")
    message = str(error.value)
    assert str(tmp_path / "no-package" / "train-images-idx3-ubyte.gz") in message
    assert "apt-get install dataset-fashion-mnist" in message and "make data" in message


# CIFAR and SVHN from tiny files in the exact on-disk format


@pytest.mark.parametrize(
    "name, folder, label_key, meta_name, meta_key, train_files, num_classes",
    [
        (
            "cifar10",
            "cifar-10-batches-py",
            "labels",
            "batches.meta",
            "label_names",
            [f"data_batch_{index}" for index in range(1, 6)],
            10,
        ),
        ("cifar100", "cifar-100-python", "fine_labels", "meta", "fine_label_names", ["train"], 100),
    ],
)
def test_cifar_round_trips_pixels_and_labels(
    tmp_path, name, folder, label_key, meta_name, meta_key, train_files, num_classes
):
    generator = torch.Generator().manual_seed(0)
    batches = {}
    for seed, file_name in enumerate(train_files + ["test_batch" if name == "cifar10" else "test"]):
        batches[file_name] = (random_images(3, seed), torch.randint(0, num_classes, (3,), generator=generator))
        write_cifar_batch(tmp_path / folder / file_name, *batches[file_name], label_key)
    write_pickle(tmp_path / folder / meta_name, {meta_key: [f"class{index}" for index in range(num_classes)]})

    train = data.load_images(name, tmp_path, train=True)
    test = data.load_images(name, tmp_path, train=False)

    assert train.images.shape == (3 * len(train_files), 3, 32, 32) and train.images.dtype == torch.uint8
    assert torch.equal(train.images, torch.cat([batches[file_name][0] for file_name in train_files]))
    assert torch.equal(train.labels, torch.cat([batches[file_name][1] for file_name in train_files]))
    test_images, test_labels = batches[list(batches)[-1]]
    assert torch.equal(test.images, test_images) and torch.equal(test.labels, test_labels)
    assert train.labels.dtype == torch.long and train.num_classes == num_classes


@pytest.fixture
def svhn_root(tmp_path):
    """An SVHN folder with 4 train, 3 test and 5 extra images; digits include 0 (stored as 10)."""
    splits = {}
    for seed, (split, count) in enumerate([("train", 4), ("test", 3), ("extra", 5)]):
        digits = torch.arange(count) % 10
        splits[split] = (random_images(count, 10 + seed), digits)
        write_svhn_split(tmp_path / "svhn" / f"{split}_32x32.mat", *splits[split])
    return tmp_path, splits


def test_svhn_round_trips_and_maps_label_10_to_digit_0(svhn_root):
    root, splits = svhn_root
    train = data.load_images("svhn", root, train=True)
    test = data.load_images("svhn", root, train=False)
    assert torch.equal(train.images, splits["train"][0]) and torch.equal(train.labels, splits["train"][1])
    assert torch.equal(test.images, splits["test"][0]) and torch.equal(test.labels, splits["test"][1])
    assert train.labels[0] == 0 and train.labels.dtype == torch.long


def test_svhn_extra_concatenates_core_train_and_extra(svhn_root):
    root, splits = svhn_root
    train = data.load_images("svhn-extra", root, train=True)
    test = data.load_images("svhn-extra", root, train=False)
    assert torch.equal(train.images, torch.cat([splits["train"][0], splits["extra"][0]]))
    assert torch.equal(train.labels, torch.cat([splits["train"][1], splits["extra"][1]]))
    assert torch.equal(test.images, splits["test"][0])


# ImageNet as an ImageFolder


def test_imagenet_loads_class_folders(tmp_path):
    write_image_folder(tmp_path / "imagenet" / "train", ["n01", "n02", "n03"], per_class=2)
    write_image_folder(tmp_path / "imagenet" / "val", ["n01", "n02", "n03"], per_class=1)
    train = data.load_image_folder("imagenet", tmp_path, train=True, transform=PILToTensor())
    val = data.load_image_folder("imagenet", tmp_path, train=False)
    assert len(train) == 6 and len(val) == 3 and train.classes == ["n01", "n02", "n03"]
    with pytest.raises(ValueError, match="dataset.num_classes=3"):
        data.load_image_folder("imagenet", tmp_path, train=False, num_classes=1000)
    image, label = train[3]
    assert label == 1 and image.shape == (3, 8, 8) and image[0, 0, 0] == 11


def test_decode_images_resizes_crops_and_renumbers(tmp_path):
    write_image_folder(tmp_path / "train", ["cat", "dog", "eel"], per_class=2)
    folder = data.load_image_folder("folder", tmp_path, train=True)
    decoded = data.decode_images(folder, torch.tensor([5, 0, 2]), image_size=4)
    assert decoded.images.shape == (3, 3, 4, 4) and decoded.images.dtype == torch.uint8
    assert decoded.labels.tolist() == [2, 0, 1] and decoded.num_classes == 3
    assert (decoded.images[0] == 21).all() and (decoded.images[1] == 0).all()  # flat images stay flat
    renumbered = data.decode_images(folder, torch.tensor([2, 5]), image_size=4, label_map={1: 0, 2: 1})
    assert renumbered.labels.tolist() == [0, 1] and renumbered.num_classes == 2


def test_missing_own_folder_names_the_layout(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.load_image_folder("folder", tmp_path / "mine", train=False)
    message = str(error.value)
    assert str(tmp_path / "mine" / "val") in message and "val/<class>/*.<jpg|png|...>" in message


def test_imagenet_without_class_folders_is_not_found(tmp_path):
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    with pytest.raises(data.DatasetNotFoundError, match="<wnid>"):
        data.load_image_folder("imagenet", tmp_path, train=True)


# Missing data and bad names


@pytest.mark.parametrize(
    "name, train, expected_paths",
    [
        ("cifar10", True, ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/batches.meta"]),
        ("cifar100", False, ["cifar-100-python/test", "cifar-100-python/meta"]),
        ("svhn", True, ["svhn/train_32x32.mat"]),
        ("svhn-extra", True, ["svhn/train_32x32.mat", "svhn/extra_32x32.mat"]),
    ],
)
def test_missing_files_name_the_paths_and_the_layout(tmp_path, name, train, expected_paths):
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.load_images(name, tmp_path / "empty", train)
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    assert all(str(tmp_path / "empty" / path) in message for path in expected_paths)
    assert "dataset.root=" in message and "DATA_ROOT=" in message


def test_missing_imagenet_names_the_folder_and_the_layout(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.load_image_folder("imagenet", tmp_path, train=False)
    message = str(error.value)
    assert str(tmp_path / "imagenet" / "val") in message and "imagenet/val/<wnid>/*.JPEG" in message


def test_partial_cifar_names_only_what_is_missing(tmp_path):
    for index in range(1, 6):
        write_cifar_batch(
            tmp_path / "cifar-10-batches-py" / f"data_batch_{index}",
            random_images(1, index),
            torch.zeros(1, dtype=torch.long),
            "labels",
        )
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.load_images("cifar10", tmp_path, train=True)
    missing = str(error.value).split("Expected layout")[0]
    assert "test_batch" in missing and "batches.meta" in missing and "data_batch_1" not in missing


def test_unknown_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="cifar10, cifar100, fashion-mnist, folder, imagenet, svhn, svhn-extra"):
        data.load_images("mnist", tmp_path, train=True)
    with pytest.raises(ValueError, match="load_image_folder"):
        data.load_images("imagenet", tmp_path, train=True)
    with pytest.raises(ValueError, match="load_images"):
        data.load_image_folder("cifar10", tmp_path, train=True)


def test_registry_specs():
    assert data.list_datasets() == sorted(data.DATASETS)
    assert data.get_spec("cifar100").num_classes == 100
    assert [name for name, spec in data.DATASETS.items() if not spec.in_memory] == ["imagenet", "folder"]
    assert "layout=" in repr(data.get_spec("svhn")) and "read=" not in repr(data.get_spec("svhn"))


def test_default_root_follows_data_root(monkeypatch):
    monkeypatch.setenv("DATA_ROOT", "/somewhere/else")
    assert str(data.default_root()) == "/somewhere/else"
    monkeypatch.delenv("DATA_ROOT")
    assert str(data.default_root()) == "data"


# LabeledImages


def test_labeled_images_subset_and_repr():
    images = data.LabeledImages(random_images(5, 0), torch.arange(5), num_classes=5, name="toy")
    subset = images.subset([4, 1])
    assert len(subset) == 2 and subset.labels.tolist() == [4, 1]
    assert torch.equal(subset.images[0], images.images[4])
    assert repr(subset) == "LabeledImages(name='toy', size=2, image_shape=(3, 32, 32), num_classes=5)"


def test_labeled_images_rejects_bad_tensors():
    with pytest.raises(ValueError, match="uint8"):
        data.LabeledImages(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), 2, "toy")
    with pytest.raises(ValueError, match="int64"):
        data.LabeledImages(random_images(2, 0), torch.zeros(3, dtype=torch.long), 2, "toy")


# Reduced-data protocols (Sec. 4.1-4.2)


def test_reduced_fashion_mnist_is_stratified_and_seeded(fashion):
    _, train, _ = fashion
    indices = data.reduced_indices(train.labels, 4000, seed=0)
    assert indices.dtype == torch.long and len(indices.unique()) == 4000
    assert torch.bincount(train.labels[indices]).tolist() == [400] * NUM_FASHION_CLASSES
    assert torch.equal(indices, data.reduced_indices(train.labels, 4000, seed=0))
    assert not torch.equal(indices, data.reduced_indices(train.labels, 4000, seed=1))


def test_search_split_halves_the_reduced_set(fashion):
    _, train, _ = fashion
    labels = train.labels[data.reduced_indices(train.labels, 4000, seed=0)]
    search_train, search_val = data.search_split(labels)
    assert len(search_train) == len(search_val) == 2000
    assert torch.equal(torch.cat([search_train, search_val]).sort().values, torch.arange(4000))
    assert torch.bincount(labels[search_train]).tolist() == [200] * NUM_FASHION_CLASSES
    assert torch.bincount(labels[search_val]).tolist() == [200] * NUM_FASHION_CLASSES
    assert torch.equal(search_train, data.search_split(labels, 0.5, seed=0)[0])


def test_reduced_indices_keep_class_shares_with_deterministic_remainders():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    assert torch.bincount(labels[data.reduced_indices(labels, 10, seed=3)]).tolist() == [5, 3, 2]
    tied = torch.tensor([0, 1, 2] * 3)
    for seed in range(5):  # 4 of 9 over three equal classes: the leftover goes to class 0
        assert torch.bincount(tied[data.reduced_indices(tied, 4, seed)]).tolist() == [2, 1, 1]


def test_splits_leave_the_global_generator_alone():
    state = torch.random.get_rng_state()
    data.search_split(torch.arange(100) % 4, seed=7)
    assert torch.equal(state, torch.random.get_rng_state())


def test_reduced_imagenet_picks_classes_and_relabels():
    targets = torch.arange(200).repeat_interleave(60)[torch.randperm(12000, generator=torch.Generator().manual_seed(0))]
    indices, label_map = data.reduced_imagenet_indices(targets, num_classes=120, size=6000, seed=0)
    assert len(indices.unique()) == 6000 and sorted(label_map.values()) == list(range(120))
    assert set(targets[indices].tolist()) == set(label_map)
    new_labels = torch.tensor([label_map[int(target)] for target in targets[indices]])
    assert torch.bincount(new_labels).tolist() == [50] * 120
    again, same_map = data.reduced_imagenet_indices(targets.tolist(), 120, 6000, seed=0)
    assert torch.equal(indices, again) and same_map == label_map
    assert data.reduced_imagenet_indices(targets, 120, 6000, seed=1)[1] != label_map


def test_reduced_imagenet_keeps_the_listed_classes_in_ascending_order():
    official = data.load_class_list("reduced-imagenet-120")
    targets = torch.arange(1000).repeat_interleave(12)
    indices, label_map = data.reduced_imagenet_indices(targets, 120, 1200, seed=0, classes=official)
    assert label_map == {label: new for new, label in enumerate(sorted(official))}  # official idx120.index(label)
    assert torch.bincount(torch.tensor([label_map[int(t)] for t in targets[indices]])).tolist() == [10] * 120
    assert data.reduced_imagenet_indices(targets, 120, 1200, seed=1, classes=official)[1] == label_map


@pytest.mark.parametrize(
    "classes, message",
    [([1, 1, 2], "3 entries \\(2 distinct\\)"), ([1, 2], "must hold 3"), ([1, 2, 9], "lacks: \\[9\\]")],
)
def test_bad_class_list_is_refused(classes, message):
    with pytest.raises(ValueError, match=message):
        data.reduced_imagenet_indices(torch.arange(5).repeat(4), 3, 6, seed=0, classes=classes)


def test_unknown_class_list_names_the_shipped_ones():
    with pytest.raises(ValueError, match="reduced-imagenet-120"):
        data.load_class_list("imagenet-7")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: data.reduced_indices(torch.arange(10), 11, seed=0), "size must be in"),
        (lambda: data.reduced_indices(torch.zeros(2, 2), 1, seed=0), "1-D"),
        (lambda: data.search_split(torch.arange(10), train_fraction=1.0), "train_fraction"),
        (lambda: data.reduced_imagenet_indices(torch.arange(5), 6, 5, seed=0), "num_classes"),
    ],
)
def test_bad_split_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
