"""MNIST / Fashion-MNIST from small IDX files written in the real format (big-endian header,
raw or gzip): every place the files are looked for, validation, normalisation, row sequences."""
import gzip
import struct

import numpy as np
import pytest
import torch

from quadfire.data import DataConfig, build_loaders, dataset_info, synthetic_loaders
from quadfire.data import mnist
from quadfire.cli import main
from quadfire.errors import ConfigError
from quadfire.data.mnist import FILES, mnist_datasets, read_idx
from quadfire.data.transforms import NORMALIZATION

COUNTS = {"train": 6, "t10k": 4}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian uint32 dims, body."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder, name, array, compress):
    folder.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path = folder / (f"{name}.gz" if compress else name)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def make_files(folder, compress=True, seed=0):
    """The four files with a few random images each; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in COUNTS.items():
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(folder, f"{split}-images-idx3-ubyte", images, compress)
        write_idx(folder, f"{split}-labels-idx1-ubyte", labels, compress)
        written[split] = (images, labels)
    return written


@pytest.fixture(autouse=True)
def no_system_dataset(monkeypatch, tmp_path):
    """CI must not depend on the Debian package: point its folder at an empty one."""
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"fashion-mnist": tmp_path / "no-system"})


def standardised(images, dataset="fashion-mnist"):
    (mean,), (std,) = NORMALIZATION[dataset]
    return (torch.from_numpy(images).float() / 255 - mean) / std


def check_test_split(cfg, written):
    train, test = mnist_datasets(cfg)
    images, labels = written["t10k"]
    assert len(train) == COUNTS["train"] and len(test) == COUNTS["t10k"]
    for i in range(len(test)):
        x, y = test[i]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and type(y) is int
        assert y == labels[i]
        torch.testing.assert_close(x[0], standardised(images[i]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("compress", [False, True])
def test_torchvision_raw_layout(tmp_path, compress):
    written = make_files(tmp_path / "FashionMNIST" / "raw", compress)
    check_test_split(DataConfig(dataset="fashion-mnist", root=str(tmp_path)), written)


def test_flat_folders_under_root(tmp_path):
    written = make_files(tmp_path / "fashion-mnist")
    check_test_split(DataConfig(dataset="fashion-mnist", root=str(tmp_path)), written)
    written = make_files(tmp_path / "direct", seed=1)
    check_test_split(DataConfig(dataset="fashion-mnist", root=str(tmp_path / "direct")), written)


def test_mixed_raw_and_gz_in_one_folder(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    written = make_files(folder, compress=True)
    gz = folder / "t10k-images-idx3-ubyte.gz"
    (folder / "t10k-images-idx3-ubyte").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    train, test = mnist_datasets(DataConfig(dataset="mnist", root=str(tmp_path)))
    torch.testing.assert_close(test[0][0][0], standardised(written["t10k"][0][0], "mnist"))


def test_system_folder_only_when_data_root_is_left_as_it_is(tmp_path, monkeypatch):
    system = tmp_path / "usr-share"
    written = make_files(system, seed=2)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"fashion-mnist": system})
    monkeypatch.chdir(tmp_path)  # the default data.root, "data", holds nothing here
    check_test_split(DataConfig(dataset="fashion-mnist"), written)
    # a copy under data.root wins over the system folder
    mine = make_files(tmp_path / "root" / "fashion-mnist", seed=3)
    check_test_split(DataConfig(dataset="fashion-mnist", root=str(tmp_path / "root")), mine)
    # a data.root the user named is used or named in the error, never swapped for the system copy
    with pytest.raises(FileNotFoundError, match=f"system copy in {system} is not used, because "
                                                f"data.root names another folder"):
        mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path / "empty")))


def test_an_incomplete_data_root_names_the_missing_files(tmp_path, monkeypatch, capsys):
    """3 of the 4 files under data.root: an error naming the fourth, though a full system copy
    exists (it used to be taken silently)."""
    system = tmp_path / "usr-share"
    make_files(system)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"fashion-mnist": system})
    folder = tmp_path / "mine" / "fashion-mnist"
    make_files(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    assert main(["train", "fmnist-csnn-t4-qif", "--set", f"data.root={tmp_path / 'mine'}",
                 "--set", f"out_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{folder} (has train-images-idx3-ubyte, train-labels-idx1-ubyte, " \
        f"t10k-images-idx3-ubyte; lacks t10k-labels-idx1-ubyte)" in err[0], err
    assert "not used, because of the incomplete copy above" in err[0]
    monkeypatch.chdir(tmp_path)  # the same under the default data.root
    (tmp_path / "mine").rename(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match="lacks t10k-labels-idx1-ubyte"):
        mnist_datasets(DataConfig(dataset="fashion-mnist"))


def test_missing_dataset_names_every_way(tmp_path):
    make_files(tmp_path / "fashion-mnist")
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as e:
        mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))
    text = str(e.value)
    for part in ("make fmnist", "apt-get install dataset-fashion-mnist", "data.download=true",
                 str(tmp_path / "FashionMNIST" / "raw"), str(tmp_path / "fashion-mnist"),
                 "t10k-labels-idx1-ubyte", "Incomplete folders"):
        assert part in text, part
    with pytest.raises(FileNotFoundError, match="no system package"):
        mnist_datasets(DataConfig(dataset="mnist", root=str(tmp_path)))


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    calls = []

    def fake_download(dataset, root):
        calls.append(dataset)
        make_files(tmp_path / "FashionMNIST" / "raw", compress=False)
    monkeypatch.setattr(mnist, "download_mnist", fake_download)
    train, _ = mnist_datasets(DataConfig(dataset="fashion-mnist-rows", root=str(tmp_path),
                                         download=True))
    assert calls == ["fashion-mnist"] and len(train) == COUNTS["train"]
    mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path), download=True))
    assert calls == ["fashion-mnist"]  # found, not fetched again


def corrupt(tmp_path, name, data):
    folder = tmp_path / "fashion-mnist"
    make_files(folder)
    (folder / f"{name}.gz").write_bytes(data)
    return folder / f"{name}.gz"


@pytest.mark.parametrize("case,match", [
    ("bad gzip", "corrupt or truncated gzip"),
    ("short gzip", "corrupt or truncated gzip"),
    ("short body", "truncated IDX file .*expected 3136 bytes after the 16-byte header, got 3000"),
    ("long body", "oversized IDX file"),
    ("short header", "expected a 16-byte header"),
    ("magic", "magic 0x00000801, expected 0x00000803"),
    ("size", "expected 28x28 images, got 32x32"),
])
def test_corrupt_images_name_the_file(tmp_path, case, match):
    good = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    data = {
        "bad gzip": b"\x1f\x8b" + b"not really gzip",
        "short gzip": gzip.compress(good)[:-20],
        "short body": gzip.compress(good[:16 + 3000]),
        "long body": gzip.compress(good + b"\0"),
        "short header": gzip.compress(good[:10]),
        "magic": gzip.compress(struct.pack(">I", 0x801) + good[4:]),
        "size": gzip.compress(idx_bytes(np.zeros((4, 32, 32), np.uint8))),
    }[case]
    path = corrupt(tmp_path, "t10k-images-idx3-ubyte", data)
    with pytest.raises(ValueError, match=match) as e:
        mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))
    assert str(path) in str(e.value)


def test_label_range_and_counts(tmp_path):
    corrupt(tmp_path, "t10k-labels-idx1-ubyte", gzip.compress(idx_bytes(np.array([0, 1, 10, 2]))))
    with pytest.raises(ValueError, match=r"labels must lie in 0..9, got 0..10"):
        mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))
    corrupt(tmp_path, "t10k-labels-idx1-ubyte", gzip.compress(idx_bytes(np.zeros(3))))
    with pytest.raises(ValueError, match="holds 4 images but .* holds 3 labels"):
        mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))


def test_read_idx_is_big_endian(tmp_path):
    array = np.arange(2 * 300, dtype=np.int64).reshape(2, 300) % 256
    path = write_idx(tmp_path, "x", array, compress=False)
    assert path.read_bytes()[:12] == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 1, 0x2c])
    np.testing.assert_array_equal(read_idx(path, 2), array)


def test_normalisation_constants_standardise_the_training_pixels(tmp_path):
    # Pixels drawn to have exactly the Fashion-MNIST training mean and std come out at 0 and 1.
    (mean,), (std,) = NORMALIZATION["fashion-mnist"]
    assert (mean, std) == (0.2860, 0.3530)
    folder = tmp_path / "fashion-mnist"
    make_files(folder)
    low, high = round(255 * (mean - std)), round(255 * (mean + std))
    images = np.where(np.arange(6 * 784).reshape(6, 28, 28) % 2, high, max(low, 0))
    write_idx(folder, "train-images-idx3-ubyte", images, compress=True)
    train, _ = mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))
    x = torch.stack([train[i][0] for i in range(len(train))])
    expected = (torch.from_numpy(images).float() / 255 - mean) / std
    torch.testing.assert_close(x[:, 0], expected)


def test_training_crop_is_a_shift_of_the_padded_image(tmp_path):
    written = make_files(tmp_path / "fashion-mnist")
    train, test = mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path),
                                            crop_padding=2))
    padded = standardised(np.pad(written["train"][0][0], 2))
    candidates = [padded[dy:dy + 28, dx:dx + 28] for dy in range(5) for dx in range(5)]
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        x = train[0][0][0]
        match = [k for k, c in enumerate(candidates) if torch.equal(x, c)]
        assert match
        seen.add(match[0])
    assert len(seen) > 5
    torch.testing.assert_close(test[0][0][0], standardised(written["t10k"][0][0]))  # no crop
    with pytest.raises(ValueError, match="autoaugment has no policy"):
        mnist_datasets(DataConfig(dataset="fashion-mnist", root=str(tmp_path), autoaugment=True))


def test_rows_are_time_major_through_the_loaders(tmp_path):
    written = make_files(tmp_path / "fashion-mnist")
    cfg = DataConfig(dataset="fashion-mnist-rows", root=str(tmp_path), batch_size=3,
                     eval_batch_size=4)
    train, test, info = build_loaders(cfg)
    assert (info.frames, tuple(info.step_shape)) == (28, (28,))
    assert info.step_shape == (28,)
    x, y = next(iter(test))
    assert x.shape == (28, 4, 28) and y.shape == (4,) and y.dtype == torch.int64
    # step t of sample n is row t of image n
    torch.testing.assert_close(x[:, 1], standardised(written["t10k"][0][1]))
    assert next(iter(train))[0].shape == (28, 3, 28)
    xs, _ = next(iter(synthetic_loaders(cfg)[0]))
    assert xs.shape == (28, 3, 28) and dataset_info(cfg) == info
    with pytest.raises(ConfigError, match="one per time step, so T must be 28, got 4"):
        build_loaders(cfg, T=4)


def test_images_through_the_loaders(tmp_path):
    make_files(tmp_path / "MNIST" / "raw")
    train, test, info = build_loaders(DataConfig(dataset="mnist", root=str(tmp_path),
                                                 batch_size=4))
    assert (info.num_classes, tuple(info.step_shape), info.frames) == (10, (1, 28, 28), None)
    assert next(iter(train))[0].shape == (4, 1, 28, 28)
