"""CIFAR10-DVS: AEDAT decoding, frame integration, resizing, split, cache and augmentation.

Recordings are written byte for byte in jAER's AEDAT 2.0 layout: '#' header lines ending in
CR LF, then big-endian (uint32 address, uint32 timestamp) pairs with the DVS128 address bits
(bit 0: 0 = ON; bits 1-7: 127 - x; bits 8-14: y from the bottom; bit 15: sync event).
"""
import os
import struct
import time
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from quadfire.data import DataConfig, build_loaders
from quadfire.data.aedat import Events, read_aedat
from quadfire.data.cifar10dvs import CLASSES, DVSFrames, cache_file, cifar10dvs_datasets
from quadfire.data.events import area_weights, integrate_frames, resize_frames
from quadfire.data.transforms import EventAugment

HEADER = (b"#!AER-DAT2.0\r\n"
          b"# This is a raw AE data file - do not edit\r\n"
          b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each "
          b"event\r\n"
          b"# Timestamps tick is 1 us\r\n"
          b"# created Mon Mar 06 15:40:17 CST 2017\r\n")


def dvs128_address(x, y, p):
    return (np.asarray(y, np.uint32) << 8) | ((127 - np.asarray(x, np.uint32)) << 1) | \
        (1 - np.asarray(p, np.uint32))


def write_aedat2(path, x, y, p, t, extra_addresses=()):
    """Events, plus non-pixel addresses (sync / special) interleaved at the front."""
    addr = np.concatenate([np.asarray(extra_addresses, np.uint32), dvs128_address(x, y, p)])
    ts = np.concatenate([np.zeros(len(extra_addresses), np.uint32), np.asarray(t, np.uint32)])
    body = np.empty(2 * len(addr), ">u4")
    body[0::2], body[1::2] = addr, ts
    path.write_bytes(HEADER + body.tobytes())


def random_events(rng, n):
    return (rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
            np.cumsum(rng.integers(0, 50, n)))


def test_decode_returns_written_events(tmp_path):
    rng = np.random.default_rng(0)
    x, y, p, t = random_events(rng, 5000)
    path = tmp_path / "rec.aedat"
    write_aedat2(path, x, y, p, t, extra_addresses=[0x8000, 0x80000000 | 0x1234])
    ev = read_aedat(path)
    assert len(ev.t) == 5000
    np.testing.assert_array_equal(ev.x, x)
    np.testing.assert_array_equal(ev.y, y)
    np.testing.assert_array_equal(ev.p, p)
    np.testing.assert_array_equal(ev.t, t)


def test_decode_hand_written_bytes(tmp_path):
    # x=3 -> raw column 124 -> 0xF8; y=10 -> 0x0A00; bit 0 clear: ON; t = 1000 us. The second
    # event differs only in bit 0 (OFF) and t.
    path = tmp_path / "one.aedat"
    path.write_bytes(HEADER + b"\x00\x00\x0a\xf8\x00\x00\x03\xe8"
                     + b"\x00\x00\x0a\xf9\x00\x00\x03\xe9")
    ev = read_aedat(path)
    assert ev.x.tolist() == [3, 3] and ev.y.tolist() == [10, 10]
    assert ev.p.tolist() == [1, 0] and ev.t.tolist() == [1000, 1001]


def test_decode_aedat1(tmp_path):
    rng = np.random.default_rng(1)
    x, y, p, t = random_events(rng, 100)
    body = b"".join(struct.pack(">HI", int(a), int(s))
                    for a, s in zip(dvs128_address(x, y, p), t))
    path = tmp_path / "old.aedat"
    path.write_bytes(b"#!AER-DAT1.0\r\n# old file\r\n" + body)
    ev = read_aedat(path)
    np.testing.assert_array_equal(np.stack([ev.x, ev.y, ev.p]), np.stack([x, y, p]))


def test_decode_errors_name_the_file(tmp_path):
    path = tmp_path / "cut.aedat"
    write_aedat2(path, *random_events(np.random.default_rng(2), 10))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated AEDAT file .*cut.aedat"):
        read_aedat(path)
    other = tmp_path / "x.aedat"
    other.write_bytes(b"\x00\x01\x02\x03")
    with pytest.raises(ValueError, match="x.aedat is not a jAER AEDAT recording"):
        read_aedat(other)
    v3 = tmp_path / "v3.aedat"
    v3.write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n")
    with pytest.raises(ValueError, match="AEDAT 3.1 is not supported"):
        read_aedat(v3)


@given(st.integers(1, 12), st.integers(0, 400), st.integers(0, 2**32 - 1))
def test_integration_conserves_counts(T, extra, seed):
    rng = np.random.default_rng(seed)
    n = T + extra
    x, y, p, t = random_events(rng, n)
    ev = Events(t, x.astype(np.int16), y.astype(np.int16), p.astype(np.uint8))
    frames = integrate_frames(ev, T)
    assert frames.shape == (T, 2, 128, 128)
    per_frame = frames.sum(axis=(1, 2, 3))
    assert per_frame.sum() == n and per_frame.max() - per_frame.min() <= 1
    for pol in (0, 1):
        assert frames[:, pol].sum() == (p == pol).sum()
    resized = resize_frames(frames, 48)
    np.testing.assert_allclose(resized.sum(axis=(2, 3)), frames.sum(axis=(2, 3)), rtol=1e-5,
                               atol=1e-3)


def test_integration_orientation_and_order():
    # jAER's origin is bottom-left: (x=0, y=0) lands in the last row, first column.
    ev = Events(np.arange(4), np.array([0, 127, 5, 6], np.int16),
                np.array([0, 127, 5, 6], np.int16), np.array([1, 0, 1, 0], np.uint8))
    frames = integrate_frames(ev, 2)
    assert frames[0, 1, 127, 0] == 1 and frames[0, 0, 0, 127] == 1
    assert frames[1, 1, 122, 5] == 1 and frames[1, 0, 121, 6] == 1
    with pytest.raises(ValueError, match="expected at least 5 events"):
        integrate_frames(ev, 5)


def test_area_weights_are_mass_conserving_overlaps():
    w = area_weights(128, 48)
    np.testing.assert_allclose(w.sum(0), 1.0)
    np.testing.assert_allclose(w.sum(1), 128 / 48)
    assert w[0, :2].tolist() == [1.0, 1.0] and w[0, 2] == pytest.approx(2 / 3)
    uniform = resize_frames(np.ones((1, 128, 128), np.float32), 48)
    np.testing.assert_allclose(uniform, (128 / 48) ** 2, rtol=1e-5)


def make_dvs_tree(root, per_class=10, events=60, seed=0):
    rng = np.random.default_rng(seed)
    base = root / "cifar10-dvs"
    for name in CLASSES:
        (base / name).mkdir(parents=True)
        for i in range(per_class):
            write_aedat2(base / name / f"cifar10_{name}_{i}.aedat", *random_events(rng, events))
    return base


def test_split_is_stratified_reproducible_and_loads(tmp_path):
    make_dvs_tree(tmp_path)
    cfg = DataConfig(dataset="cifar10dvs", root=str(tmp_path), batch_size=8,
                     eval_batch_size=10)
    train, test = cifar10dvs_datasets(cfg, 4)
    assert len(train) == 90 and len(test) == 10
    assert sorted(test.labels) == list(range(10))
    assert not set(train.recordings) & set(test.recordings)
    again, _ = cifar10dvs_datasets(cfg, 4)
    other, _ = cifar10dvs_datasets(DataConfig(**{**vars(cfg), "seed": 1}), 4)
    assert again.recordings == train.recordings and other.recordings != train.recordings
    # One worker process: the dataset pickles and the worker writes the frame cache.
    train_loader, test_loader, info = build_loaders(DataConfig(**{**vars(cfg), "workers": 1}), 4)
    assert (info.frames, tuple(info.step_shape)) == (4, (2, 48, 48))
    x, y = next(iter(test_loader))
    assert x.shape == (4, 10, 2, 48, 48) and x.dtype == torch.float32
    np.testing.assert_allclose(x.sum(dim=(0, 2, 3, 4)).numpy(), 60.0, rtol=1e-5)
    x, _ = next(iter(train_loader))
    assert x.shape == (4, 8, 2, 48, 48)
    assert len(list((tmp_path / "cifar10-dvs").rglob("*.T4_S48.npz"))) >= 18


def test_cache_location_key_and_speedup(tmp_path):
    rng = np.random.default_rng(3)
    recs = []
    for i in range(4):
        path = tmp_path / "airplane" / f"r{i}.aedat"
        path.parent.mkdir(exist_ok=True)
        write_aedat2(path, *random_events(rng, 300_000))
        recs.append(path)
    data = DVSFrames(recs, [0] * 4, T=10, size=48)
    start = time.perf_counter()
    first = [data[i][0] for i in range(4)]
    cold = time.perf_counter() - start
    assert (tmp_path / "airplane" / "r0.T10_S48.npz").is_file()
    warm = []
    for _ in range(3):
        start = time.perf_counter()
        second = [data[i][0] for i in range(4)]
        warm.append(time.perf_counter() - start)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert cold >= 5 * min(warm), f"cached pass {min(warm):.4f}s vs first pass {cold:.4f}s"
    elsewhere = tmp_path / "cache"
    DVSFrames(recs[:1], [0], T=3, size=32, cache_dir=str(elsewhere))[0]
    assert cache_file(recs[0], 3, 32, str(elsewhere)) == elsewhere / "T3_S32" / "airplane" / \
        "r0.npz"
    assert (elsewhere / "T3_S32" / "airplane" / "r0.npz").is_file()


def test_corrupt_cache_is_rebuilt_with_warning(tmp_path):
    path = tmp_path / "rec.aedat"
    write_aedat2(path, *random_events(np.random.default_rng(4), 500))
    data = DVSFrames([path], [0], T=5, size=48)
    fresh = data[0][0]
    cached = cache_file(path, 5, 48, "")
    cached.write_bytes(cached.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="frame cache .*rec.T5_S48.npz.*rebuilding"):
        rebuilt = data[0][0]
    assert torch.equal(rebuilt, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(data[0][0], fresh)


def test_a_replaced_recording_is_framed_anew_not_served_from_the_cache(tmp_path):
    """The cache used to be keyed by T and frame size alone: replace a recording and its old
    frames came back (sum 500 where a fresh decode gives 50)."""
    path = tmp_path / "rec.aedat"
    write_aedat2(path, *random_events(np.random.default_rng(5), 500))
    data = DVSFrames([path], [0], T=5, size=48)
    assert data[0][0].sum().item() == pytest.approx(500)
    write_aedat2(path, *random_events(np.random.default_rng(6), 50))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stale cache is rebuilt quietly: nothing is wrong
        assert data[0][0].sum().item() == pytest.approx(50)
    # the same size, only a new modification time, counts as another recording too
    stale = cache_file(path, 5, 48, "").read_bytes()
    write_aedat2(path, *random_events(np.random.default_rng(7), 50))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    expected = DVSFrames([path], [0], T=5, size=48, cache_dir=str(tmp_path / "fresh"))[0][0]
    assert torch.equal(data[0][0], expected) and cache_file(path, 5, 48, "").read_bytes() != stale


def test_too_short_recording_is_named(tmp_path):
    path = tmp_path / "short.aedat"
    write_aedat2(path, *random_events(np.random.default_rng(5), 3))
    with pytest.raises(ValueError, match="short.aedat: cannot split 3 events into T=10"):
        DVSFrames([path], [0], T=10, size=48)[0]


def test_missing_and_empty_layouts(tmp_path):
    cfg = DataConfig(dataset="cifar10dvs", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"cifar10-dvs/<class>/\*.aedat"):
        build_loaders(cfg, 10)
    base = make_dvs_tree(tmp_path, per_class=2)
    for f in (base / "cat").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match="empty CIFAR10-DVS class folder .*cat"):
        build_loaders(cfg, 10)
    (base / "cat").rmdir()
    with pytest.raises(FileNotFoundError, match=r"class folders \['cat'\] missing"):
        build_loaders(cfg, 10)
    with pytest.raises(ValueError, match="time-major: pass the run's T"):
        build_loaders(cfg)


def test_event_augment_is_flip_and_roll_of_all_frames():
    x = torch.rand(3, 2, 48, 48)
    candidates = [x.flip(-1).roll((dy, dx), (-2, -1)) if f else x.roll((dy, dx), (-2, -1))
                  for f in (0, 1) for dy in range(-5, 6) for dx in range(-5, 6)]
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        out = EventAugment(5)(x)
        match = [k for k, c in enumerate(candidates) if torch.equal(out, c)]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) > 10


def test_an_unwritable_cache_falls_back_to_decoding(tmp_path, monkeypatch):
    """Read-only dataset folders are common on clusters: the frames come out all the same,
    with one RuntimeWarning per folder, and no cache is attempted there again."""
    folder = tmp_path / "ro"
    folder.mkdir()
    recs = []
    for i in range(2):
        recs.append(folder / f"r{i}.aedat")
        write_aedat2(recs[-1], *random_events(np.random.default_rng(6 + i), 400))
    expected = [DVSFrames([r], [0], T=4, size=16, cache_dir=str(tmp_path / "c"))[0][0]
                for r in recs]
    attempts = []

    def read_only(*args, **kwargs):  # what savez meets in a read-only folder
        attempts.append(args[0])
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(np, "savez_compressed", read_only)
    monkeypatch.setattr("quadfire.data.frame_cache._UNWRITABLE", set())
    data = DVSFrames(recs, [0, 0], T=4, size=16)
    with pytest.warns(RuntimeWarning, match=r"cannot write the frame cache .*r0\.T4_S16\.npz "
                                            r"\(PermissionError: Permission denied\); building"):
        first = data[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = data[1][0]
    assert torch.equal(first, expected[0]) and torch.equal(second, expected[1])
    assert len(attempts) == 1 and not list(folder.glob("*.npz"))
