"""``tonic:<Name>`` datasets: Tonic's own dataset classes read files written here in their real
on-disk formats (SHD's HDF5, N-MNIST's 5-byte events), our framing against Tonic's ToFrame on
the same events, the frame cache, the data options and the missing-data error.

The missing-extra error is tested in test_optional_extras.py, which runs without Tonic.
"""
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

tonic = pytest.importorskip("tonic", reason="Tonic is not installed (pip install 'quadfire[dvs]')")
h5py = pytest.importorskip("h5py", reason="h5py comes with Tonic")

from quadfire.data import DataConfig, build_loaders, dataset_info, download  # noqa: E402
from quadfire.data.aedat import Events  # noqa: E402
from quadfire.data.events import integrate_frames  # noqa: E402
from quadfire.data.tonic_datasets import EqualCountFrames  # noqa: E402
from quadfire.errors import ConfigError, DataNotFoundError  # noqa: E402

XYTP = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])


def tonic_events(x, y, t, p):
    return tonic.io.make_structured_array(x, y, t, p, dtype=XYTP)


# --- our equal-count binning against Tonic's ToFrame, on the same events --------------------

@given(st.integers(1, 8), st.integers(1, 40), st.integers(0, 7), st.integers(0, 2**32 - 1))
def test_equal_count_frames_match_tonic_to_frame(T, per_frame, extra, seed):
    """quadfire's CIFAR10-DVS frames of jAER events (y from the bottom) equal Tonic's
    ToFrame(n_event_bins=T) of the same events with y -> 127 - y, channel for channel (both
    put polarity p in channel p: 0 OFF, 1 ON), when T divides the event count; otherwise Tonic
    puts events k c .. (k+1) c - 1 (c = n // T) in frame k and drops the last n mod T."""
    rng = np.random.default_rng(seed)
    extra = extra % T
    n = T * per_frame + extra
    x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    t = np.cumsum(rng.integers(0, 50, n))
    ours = integrate_frames(Events(t, x.astype(np.int16), y.astype(np.int16), p.astype(np.uint8)), T)
    theirs = tonic.transforms.ToFrame(sensor_size=(128, 128, 2), n_event_bins=T)(
        tonic_events(x, 127 - y, t, p))
    assert theirs.shape == ours.shape == (T, 2, 128, 128)
    if extra == 0:
        np.testing.assert_array_equal(theirs, ours)
        # The tonic namespace's transform is the same binning without jAER's row flip.
        np.testing.assert_array_equal(
            EqualCountFrames((128, 128, 2), T)(tonic_events(x, y, t, p)), ours[:, :, ::-1])
    else:
        assert ours.sum() == n and theirs.sum() == n - extra
        kept = T * per_frame
        head = integrate_frames(Events(t[:kept], x[:kept].astype(np.int16),
                                       y[:kept].astype(np.int16), p[:kept].astype(np.uint8)), T)
        np.testing.assert_array_equal(theirs, head)


# --- SHD in its real HDF5 layout -----------------------------------------------------------

def write_shd(root, part, samples):
    """Tonic's SHD layout: <root>/SHD/shd_<part>.h5 (spikes/times in s, spikes/units,
    labels, extra/keys, extra/speaker) beside its archive, whose presence Tonic checks."""
    folder = root / "SHD"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"shd_{part}.h5.zip").write_bytes(b"")
    with h5py.File(folder / f"shd_{part}.h5", "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float64))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u, _) in enumerate(samples):
            times[i], units[i] = t, u
        f["labels"] = np.array([label for *_, label in samples], np.uint16)
        f["extra/keys"] = np.array([f"digit-{i}".encode() for i in range(20)])
        f["extra/speaker"] = np.zeros(len(samples), np.uint16)


def shd_samples(rng, n, events=60):
    out = []
    for i in range(n):
        t = np.sort(rng.uniform(0, 0.8, events))
        out.append((t, rng.integers(0, 700, events), i % 20))
    return out


def test_shd_frames_labels_and_cache(tmp_path):
    rng = np.random.default_rng(0)
    train, test = shd_samples(rng, 6), shd_samples(rng, 4)
    write_shd(tmp_path, "train", train)
    write_shd(tmp_path, "test", test)
    cfg = DataConfig(dataset="tonic:SHD", root=str(tmp_path), batch_size=3, eval_batch_size=4)
    train_loader, test_loader, info = build_loaders(cfg, 5)
    assert (info.num_classes, info.step_shape, info.frames) == (20, (700,), 5)
    x, y = next(iter(test_loader))
    assert x.shape == (5, 4, 700) and x.dtype == torch.float32  # time-major [T, N, channels]
    assert y.tolist() == [0, 1, 2, 3]
    for i, (_, units, _) in enumerate(test):  # equal-count frames: 12 events each
        expected = np.zeros((5, 700), np.float32)
        np.add.at(expected, (np.arange(60) * 5 // 60, units), 1)
        np.testing.assert_array_equal(x[:, i].numpy(), expected)
    cached = sorted((tmp_path / "quadfire-frames" / "SHD" / "T5_events_dn0_ds1" / "test").glob("*.npz"))
    assert [p.name for p in cached] == ["0.npz", "1.npz", "2.npz", "3.npz"]
    assert len(train_loader.dataset) == 6 and next(iter(train_loader))[0].shape == (5, 3, 700)
    # Workers started by spawn or forkserver receive the dataset pickled.
    copy = pickle.loads(pickle.dumps(test_loader.dataset))
    assert type(copy.source) is tonic.datasets.SHD and torch.equal(copy[1][0], x[:, 1])


def test_shd_time_bins_and_channel_downsampling(tmp_path):
    # Tonic's ToFrame(n_time_bins=2) splits first-to-last event time into 2 equal bins.
    t = np.array([0.0, 0.1, 0.2, 0.75, 0.8])
    units = np.array([0, 4, 5, 699, 10])
    write_shd(tmp_path, "train", [(t, units, 3)])
    write_shd(tmp_path, "test", [(t, units, 7)])
    cfg = DataConfig(dataset="tonic:SHD", root=str(tmp_path), frame_by="time", downsample=0.2)
    assert dataset_info(cfg, 2).step_shape == (140,)
    _, test_loader, _ = build_loaders(cfg, 2)
    x, y = next(iter(test_loader))
    # Bins [0, 0.4 s) and [0.4 s, 0.8 s): the last event, at 0.8 s, is past the end. Units map
    # to channels floor(unit * 140 / 700): 0, 4 -> 0; 5 -> 1; 699 -> 139.
    expected = np.zeros((2, 140), np.float32)
    expected[0, 0], expected[0, 1], expected[1, 139] = 2, 1, 1
    np.testing.assert_array_equal(x[:, 0].numpy(), expected)
    assert y.tolist() == [7]


def test_missing_data_is_named_and_download_goes_through_tonic(tmp_path, monkeypatch):
    cfg = DataConfig(dataset="tonic:SHD", root=str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"SHD is missing .*SHD.*shd_train.h5.zip.*"
                                                r"data.download=true"):
        build_loaders(cfg, 4)
    fetched = []

    def fake_download(self):  # what Tonic's download leaves in location_on_system
        fetched.append(self.filename)
        write_shd(tmp_path, self.filename.split("_")[1].split(".")[0],
                  shd_samples(np.random.default_rng(1), 2))

    monkeypatch.setattr(tonic.datasets.SHD, "download", fake_download)
    download(DataConfig(dataset="tonic:SHD", root=str(tmp_path), download=True))
    assert fetched == ["shd_train.h5.zip", "shd_test.h5.zip"]
    _, test_loader, _ = build_loaders(cfg, 4)
    assert next(iter(test_loader))[0].shape == (4, 2, 700)


def test_an_offline_download_is_one_line(tmp_path, monkeypatch, capsys):
    """urllib's URLError used to reach the user as a traceback."""
    import urllib.error
    from quadfire.cli import main

    def offline(self):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))
    monkeypatch.setattr(tonic.datasets.SHD, "download", offline)
    assert main(["train", "shd-seq-mlp-t100-qif", "--download", "--set",
                 f"data.root={tmp_path / 'data'}", "--set", f"out_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = (f"could not download Tonic's SHD into {tmp_path / 'data' / 'SHD'} (URLError: "
                f"[Errno -3] Temporary failure in name resolution); check the network")
    assert len(err) == 1 and expected in err[0], err


# --- N-MNIST in its real binary format -------------------------------------------------------

def write_nmnist_bin(path, x, y, t, p):
    """N-MNIST's 40-bit events: x, y, then polarity (bit 7) and a 23-bit timestamp in us."""
    raw = np.zeros((len(x), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(p) << 7) | ((np.asarray(t) >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (np.asarray(t) >> 8) & 0xFF, np.asarray(t) & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())


@pytest.fixture
def nmnist(tmp_path, monkeypatch):
    """A small N-MNIST tree in Tonic's layout (<root>/NMNIST/{Train,Test}/<digit>/*.bin)."""
    # Tonic's presence check wants the full 60000-recording training set (>= 10000 files).
    monkeypatch.setattr(tonic.datasets.NMNIST, "_check_exists", lambda self: self._is_file_present())
    rng = np.random.default_rng(2)
    events = {}
    for part, archive in (("Train", "train.zip"), ("Test", "test.zip")):
        (tmp_path / "NMNIST").mkdir(exist_ok=True)
        (tmp_path / "NMNIST" / archive).write_bytes(b"")
        for digit in range(10):
            n = 40 + digit
            # A 10 x 10 patch, so some events have neighbours (for Denoise to keep).
            ev = (rng.integers(12, 22, n), rng.integers(12, 22, n),
                  np.sort(rng.integers(0, 300_000, n)), rng.integers(0, 2, n))
            write_nmnist_bin(tmp_path / "NMNIST" / part / str(digit) / "00001.bin", *ev)
            events[part, digit] = ev
    return tmp_path, events


def test_nmnist_frames_equal_our_binning_of_its_events(nmnist):
    root, events = nmnist
    cfg = DataConfig(dataset="tonic:NMNIST", root=str(root), eval_batch_size=10)
    _, test_loader, info = build_loaders(cfg, 4)
    assert info.step_shape == (2, 34, 34)
    x, y = next(iter(test_loader))
    assert x.shape == (4, 10, 2, 34, 34) and y.tolist() == list(range(10))
    for digit in range(10):
        expected = EqualCountFrames((34, 34, 2), 4)(tonic_events(*events["Test", digit]))
        np.testing.assert_array_equal(x[:, digit].numpy(), expected)
    # Downsample by 1/2: Tonic maps x -> floor(x / 2), so frames are 2x2 sum pools.
    half = DataConfig(dataset="tonic:NMNIST", root=str(root), eval_batch_size=10, downsample=0.5)
    small, _ = next(iter(build_loaders(half, 4)[1]))
    assert small.shape == (4, 10, 2, 17, 17)
    np.testing.assert_array_equal(small.numpy(), x.unflatten(3, (17, 2)).unflatten(5, (17, 2))
                                  .sum((4, 6)).numpy())


def test_denoise_runs_tonics_filter(nmnist):
    root, events = nmnist
    cfg = DataConfig(dataset="tonic:NMNIST", root=str(root), eval_batch_size=10,
                     denoise_us=100_000)
    x, _ = next(iter(build_loaders(cfg, 2)[1]))
    kept = tonic.transforms.Denoise(filter_time=100_000)(tonic_events(*events["Test", 3]))
    assert 0 < len(kept) < len(events["Test", 3][0])
    np.testing.assert_array_equal(x[:, 3].numpy(), EqualCountFrames((34, 34, 2), 2)(kept))


def test_cache_is_reused_and_keyed_by_the_options(nmnist, monkeypatch):
    root, _ = nmnist
    cfg = DataConfig(dataset="tonic:NMNIST", root=str(root), eval_batch_size=10)
    first, _ = next(iter(build_loaders(cfg, 3)[1]))

    def no_reads(self, index):
        raise AssertionError("cached frames should not be read from the recordings again")

    with monkeypatch.context() as m:
        m.setattr(tonic.datasets.NMNIST, "__getitem__", no_reads)
        again, _ = next(iter(build_loaders(cfg, 3)[1]))
    assert torch.equal(first, again)
    base = root / "quadfire-frames" / "NMNIST"
    build_loaders(DataConfig(**{**vars(cfg), "frame_by": "time"}), 3)[1].dataset[0]
    assert {p.name for p in base.iterdir()} == {"T3_events_dn0_ds1", "T3_time_dn0_ds1"}


def test_a_replaced_recording_rebuilds_the_cached_frames(nmnist):
    root, events = nmnist
    cfg = DataConfig(dataset="tonic:NMNIST", root=str(root), eval_batch_size=10)
    first, _ = next(iter(build_loaders(cfg, 3)[1]))
    x, y, t, p = (e[:5] for e in events["Test", 4])  # recording 4 now holds 5 events
    write_nmnist_bin(root / "NMNIST" / "Test" / "4" / "00001.bin", x, y, t, p)
    again, _ = next(iter(build_loaders(cfg, 3)[1]))
    assert first[:, 4].sum() == len(events["Test", 4][0]) and again[:, 4].sum() == 5
    assert torch.equal(again[:, 3], first[:, 3])


# --- datasets Tonic publishes without a split ------------------------------------------------

def test_unsplit_dataset_is_split_per_class(tmp_path, monkeypatch):
    # Tonic's CIFAR10DVS reads AEDAT4 files; their events come from a stub reader here.
    base = tmp_path / "CIFAR10DVS"
    for name in tonic.datasets.CIFAR10DVS.classes:
        (base / name).mkdir(parents=True)
        for i in range(10):
            (base / name / f"{i}.aedat4").write_bytes(b"")
    (base / "CIFAR10DVS.zip").write_bytes(b"")
    monkeypatch.setattr(tonic.datasets.CIFAR10DVS, "_check_exists", lambda self: True)
    tp = np.dtype([("t", np.uint64), ("x", np.uint16), ("y", np.uint16), ("p", bool)])

    def read_aedat4(path):
        rng = np.random.default_rng(len(path))
        n = 50
        return tonic.io.make_structured_array(np.arange(n), rng.integers(0, 128, n),
                                              rng.integers(0, 128, n), rng.integers(0, 2, n), dtype=tp)

    monkeypatch.setattr("tonic.datasets.cifar10dvs.read_aedat4", read_aedat4)
    cfg = DataConfig(dataset="tonic:CIFAR10DVS", root=str(tmp_path), downsample=0.25,
                     eval_batch_size=10)
    train_loader, test_loader, info = build_loaders(cfg, 2)
    assert len(train_loader.dataset) == 90 and len(test_loader.dataset) == 10
    x, y = next(iter(test_loader))
    assert x.shape == (2, 10, 2, 32, 32) and sorted(y.tolist()) == list(range(10))
    assert x.sum().item() == 10 * 50
    assert (tmp_path / "quadfire-frames" / "CIFAR10DVS" / "T2_events_dn0_ds0.25" / "all").is_dir()


def test_unknown_and_unsupported_names():
    with pytest.raises(ConfigError, match="unknown Tonic dataset 'NMIST'.*'NMNIST'"):
        DataConfig(dataset="tonic:NMIST")
    with pytest.raises(ConfigError, match="DSEC does not say its classes"):
        DataConfig(dataset="tonic:DSEC")
    with pytest.raises(ConfigError, match="denoise_us needs a 2-D sensor"):
        build_loaders(DataConfig(dataset="tonic:SHD", denoise_us=100.0), 4)
    with pytest.raises(ConfigError, match="time-major: pass the run's T"):
        dataset_info(DataConfig(dataset="tonic:NMNIST"))
