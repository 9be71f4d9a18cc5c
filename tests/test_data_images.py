"""CIFAR-10/100 from pickles in the real on-disk layout, ImageNet from a JPEG class-folder tree."""
import io
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from quadfire.data import DataConfig, build_loaders
from quadfire.data.cifar import cifar_datasets, read_batch
from quadfire.errors import DataError, DataNotFoundError
from quadfire.data.imagenet import imagenet_datasets
from quadfire.data.transforms import NORMALIZATION, Cutout


def write_cifar_batch(path, images, labels, label_key):
    """One batch as the python-version archive stores it: a pickled dict, data [N, 3072]."""
    entry = {"batch_label": path.name, "data": images.reshape(len(images), 3 * 32 * 32),
             label_key: list(labels), "filenames": [f"img_{i}.png" for i in range(len(labels))]}
    if label_key == "fine_labels":
        entry["coarse_labels"] = [lab // 5 for lab in labels]
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)


def make_cifar(root, dataset, per_file=3, seed=0):
    rng = np.random.default_rng(seed)
    if dataset == "cifar10":
        folder, train, test, key, classes = ("cifar-10-batches-py",
                                             [f"data_batch_{i}" for i in range(1, 6)],
                                             ["test_batch"], "labels", 10)
    else:
        folder, train, test, key, classes = "cifar-100-python", ["train"], ["test"], \
            "fine_labels", 100
    (root / folder).mkdir(parents=True)
    written = {}
    for name in train + test:
        images = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, classes, per_file).tolist()
        write_cifar_batch(root / folder / name, images, labels, key)
        written[name] = (images, labels)
    return root / folder, written


def normalized(images, dataset):
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in NORMALIZATION[dataset])
    return (torch.from_numpy(images).float() / 255 - mean) / std


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_loads_written_batches(tmp_path, dataset):
    _, written = make_cifar(tmp_path, dataset)
    train, test = cifar_datasets(DataConfig(dataset=dataset, root=str(tmp_path)))
    test_name = "test_batch" if dataset == "cifar10" else "test"
    images, labels = written[test_name]
    assert len(test) == len(labels)
    assert len(train) == sum(len(v[1]) for k, v in written.items() if k != test_name)
    for i in range(len(test)):
        x, y = test[i]
        assert type(x) is torch.Tensor and x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert y == labels[i]
        torch.testing.assert_close(x, normalized(images[i], dataset), atol=1e-5, rtol=0)


def test_cifar_train_augmentation_is_padded_crop_and_flip(tmp_path):
    _, written = make_cifar(tmp_path, "cifar10")
    train, _ = cifar_datasets(DataConfig(dataset="cifar10", root=str(tmp_path)))
    image = written["data_batch_1"][0][0]
    padded = torch.nn.functional.pad(torch.from_numpy(image), (4, 4, 4, 4))
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in NORMALIZATION["cifar10"])
    candidates = []
    for dy in range(9):
        for dx in range(9):
            crop = (padded[:, dy:dy + 32, dx:dx + 32].float() / 255 - mean) / std
            candidates += [crop, crop.flip(-1)]
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        x, _ = train[0]
        match = [k for k, c in enumerate(candidates) if torch.allclose(x, c, atol=1e-5)]
        assert match, "training sample is not a padded crop (+ flip) of the stored image"
        seen.add(match[0])
    assert len(seen) > 1, "augmentation did not vary between draws"


def test_cifar_autoaugment_and_cutout(tmp_path):
    make_cifar(tmp_path, "cifar100")
    train, _ = cifar_datasets(DataConfig(dataset="cifar100", root=str(tmp_path),
                                         autoaugment=True, cutout=16))
    torch.manual_seed(1)
    x, _ = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert int((x == 0).all(0).sum()) >= 8 * 8  # at least a quarter of the 16x16 square


def test_cutout_zeroes_one_clipped_square():
    torch.manual_seed(0)
    for _ in range(20):
        out = Cutout(8)(torch.ones(3, 32, 32))
        zero = (out == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 4 * 4 <= int(zero.sum()) <= 64
        assert int(zero.sum()) == len(rows) * len(cols)  # a rectangle: the clipped square


def test_cifar_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*--download"):
        build_loaders(DataConfig(dataset="cifar10", root=str(tmp_path)))


def test_cifar_download_flag_calls_torchvision(tmp_path, monkeypatch):
    calls = []

    def fake_cifar100(root, train, download):  # what torchvision's download leaves on disk
        calls.append((root, train, download))
        make_cifar(tmp_path, "cifar100")

    monkeypatch.setattr("torchvision.datasets.CIFAR100", fake_cifar100)
    build_loaders(DataConfig(dataset="cifar100", root=str(tmp_path), download=True))
    assert calls == [(str(tmp_path), True, True)]


def test_cifar_truncated_file_is_named(tmp_path):
    folder, _ = make_cifar(tmp_path, "cifar10")
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt or truncated CIFAR file .*data_batch_3"):
        cifar_datasets(DataConfig(dataset="cifar10", root=str(tmp_path)))


def test_cifar_empty_split_is_an_error(tmp_path):
    folder, _ = make_cifar(tmp_path, "cifar100")
    write_cifar_batch(folder / "test", np.zeros((0, 3, 32, 32), np.uint8), [], "fine_labels")
    with pytest.raises(ValueError, match="empty CIFAR split"):
        cifar_datasets(DataConfig(dataset="cifar100", root=str(tmp_path)))


def make_imagenet(root, classes=("n01440764", "n01443537", "n01484850"), per_class=2):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            d = root / "imagenet" / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                h, w = (300, 200) if i % 2 else (180, 260)
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(d / f"{c}_{i}.JPEG", format="JPEG")
    return root / "imagenet"


def test_imagenet_tree_loads_to_224(tmp_path):
    make_imagenet(tmp_path)
    train_loader, test_loader, info = build_loaders(
        DataConfig(dataset="imagenet", root=str(tmp_path), batch_size=4, eval_batch_size=6))
    assert info.num_classes == 3 and tuple(info.step_shape) == (3, 224, 224)
    x, y = next(iter(train_loader))
    assert x.shape == (4, 3, 224, 224) and x.dtype == torch.float32
    x, y = next(iter(test_loader))
    assert x.shape == (6, 3, 224, 224) and sorted(y.tolist()) == [0, 0, 1, 1, 2, 2]


def test_imagenet_eval_is_resize_then_center_crop(tmp_path):
    base = make_imagenet(tmp_path, classes=("a",), per_class=1)
    _, val = imagenet_datasets(DataConfig(dataset="imagenet", root=str(tmp_path)))
    x, _ = val[0]
    img = Image.open(base / "val" / "a" / "a_0.JPEG").convert("RGB")  # 260 wide, 180 high
    w = int(256 * 260 / 180)  # short side to 256, aspect kept
    ref = np.asarray(img.resize((w, 256), Image.BILINEAR), dtype=np.float32) / 255
    top, left = 16, int(round((w - 224) / 2))
    ref = torch.from_numpy(ref[top:top + 224, left:left + 224]).permute(2, 0, 1)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in NORMALIZATION["imagenet"])
    torch.testing.assert_close(x, (ref - mean) / std,
                               atol=1e-4, rtol=0)


def test_imagenet_missing_and_mismatched_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="imagenet/train/<class>"):
        imagenet_datasets(DataConfig(dataset="imagenet", root=str(tmp_path)))
    base = make_imagenet(tmp_path)
    (base / "val" / "n01440764").rename(base / "val" / "n99999999")
    with pytest.raises(ValueError, match="same class folders"):
        imagenet_datasets(DataConfig(dataset="imagenet", root=str(tmp_path)))


def test_imagenet_empty_split_is_an_error(tmp_path):
    make_imagenet(tmp_path)
    for f in (tmp_path / "imagenet" / "val").rglob("*.JPEG"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match="empty ImageNet split"):
        imagenet_datasets(DataConfig(dataset="imagenet", root=str(tmp_path)))


def test_imagenet_truncated_jpeg_is_named(tmp_path):
    base = make_imagenet(tmp_path)
    bad = base / "train" / "n01443537" / "n01443537_1.JPEG"
    bad.write_bytes(bad.read_bytes()[:300])
    train, _ = imagenet_datasets(DataConfig(dataset="imagenet", root=str(tmp_path)))
    index = [i for i, (p, _) in enumerate(train.samples) if p == str(bad)][0]
    with pytest.raises(ValueError, match="corrupt or truncated image file .*n01443537_1.JPEG"):
        train[index]


def test_distributed_download_happens_once_on_rank_zero(tmp_path, monkeypatch):
    import torch.distributed as dist

    calls = []
    monkeypatch.setattr("torchvision.datasets.CIFAR10",
                        lambda root, train, download: (calls.append("cifar10"),
                                                       make_cifar(tmp_path, "cifar10")))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0,
                            world_size=1)
    try:
        train, _, info = build_loaders(DataConfig(dataset="cifar10", root=str(tmp_path),
                                                  download=True, batch_size=4), distributed=True)
    finally:
        dist.destroy_process_group()
    assert calls == ["cifar10"] and info.num_classes == 10
    assert next(iter(train))[0].shape == (4, 3, 32, 32)


class Python2Pickler(pickle._Pickler):
    """Writes what cPickle under Python 2 wrote for CIFAR: byte strings as STRING opcodes
    (no _codecs.encode) and numpy 1's module name for the array reconstructor."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + n.to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_python2_batch(path, images, labels):
    entry = {b"batch_label": b"testing batch 1 of 1", b"labels": list(labels),
             b"data": images.reshape(len(images), -1), b"filenames": [b"x.png"] * len(labels)}
    buf = io.BytesIO()
    Python2Pickler(buf, protocol=2).dump(entry)
    data = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"_codecs" not in data and b"numpy.core.multiarray\n_reconstruct" in data
    path.write_bytes(data)


def test_cifar_reads_the_original_python2_pickles(tmp_path):
    folder, written = make_cifar(tmp_path, "cifar10")
    images, labels = written["test_batch"]
    write_python2_batch(folder / "test_batch", images, labels)
    got_images, got_labels = read_batch(folder / "test_batch", "labels")
    assert np.array_equal(got_images, images) and got_labels.tolist() == labels


@pytest.mark.parametrize("old, new", [
    (b"numpy\nndarray\n", b"numpy\nndarrax\n"),               # a renamed global
    (b"_reconstruct\n", b"_reconstrux\n"),
    (b"cnumpy._core.multiarray\n", b"cnumpy._core.multiarrax\n"),  # a module that is not there
    (b"cnumpy\ndtype\n", b"cposix\nsystem\n"),               # a global outside a CIFAR batch
])
def test_cifar_unpickler_refuses_any_other_global(tmp_path, old, new):
    folder, _ = make_cifar(tmp_path, "cifar10")
    path = folder / "test_batch"
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(DataError, match=r"corrupt or truncated CIFAR file .*test_batch.*is not "
                                        r"part of a CIFAR batch"):
        read_batch(path, "labels")


@settings(max_examples=60)
@given(data=st.data())
def test_a_flipped_byte_is_a_data_error_or_harmless(tmp_path_factory, data):
    """ModuleNotFoundError, LookupError, MemoryError, ...: whatever a damaged pickle makes the
    unpickler raise comes out as a DataError naming the file."""
    path = tmp_path_factory.mktemp("flip") / "batch"
    rng = np.random.default_rng(0)
    write_cifar_batch(path, rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8), [1, 2],
                      "labels")
    raw = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(raw))
    try:
        images, labels = read_batch(path, "labels")
    except DataError as e:
        assert str(path) in str(e)
    else:
        assert images.dtype == np.uint8 and labels.dtype == np.int64


def test_download_without_a_network_is_one_clear_error(tmp_path, monkeypatch):
    import urllib.error

    def offline(root, train, download):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))
    monkeypatch.setattr("torchvision.datasets.CIFAR10", offline)
    with pytest.raises(DataNotFoundError, match=r"could not download cifar10 .*URLError.*check "
                                                r"the network connection"):
        build_loaders(DataConfig(dataset="cifar10", root=str(tmp_path), download=True))


def test_a_corrupt_image_reads_the_same_with_workers(tmp_path):
    """A worker's DataError is re-raised with the dataset's own message, as with workers=0."""
    base = make_imagenet(tmp_path, classes=("a",), per_class=1)
    bad = base / "val" / "a" / "a_0.JPEG"
    bad.write_bytes(bad.read_bytes()[:300])
    messages = []
    for workers in (0, 1):
        _, test, _ = build_loaders(DataConfig(dataset="imagenet", root=str(tmp_path),
                                              workers=workers))
        with pytest.raises(DataError) as raised:
            next(iter(test))
        test.close()
        messages.append(str(raised.value))
    assert messages[0] == messages[1] and messages[0].startswith("corrupt or truncated image")
