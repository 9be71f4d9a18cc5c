"""DataConfig validation, build_loaders on digits, synthetic loaders, distributed samplers."""
import dataclasses
import os
import signal
import time

import pytest
import torch
import torch.distributed as dist

from quadfire.data import (DataConfig, Loader, list_datasets, ShardSampler, build_loaders,
                           dataset_info, synthetic_loaders)
from quadfire.data.common import TensorPairs
from quadfire.errors import DataError


def test_digits_loaders_shapes_and_info():
    train, test, info = build_loaders(DataConfig(batch_size=32, eval_batch_size=100))
    assert (info.num_classes, tuple(info.step_shape), info.frames) == (10, (1, 8, 8), None)
    x, y = next(iter(train))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,) and y.dtype == torch.int64
    assert sum(len(b[1]) for b in test) == len(test.dataset)


def test_train_shuffle_is_seeded():
    first = [next(iter(build_loaders(DataConfig(seed=s))[0]))[1] for s in (1, 1, 2)]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])


@pytest.mark.parametrize("name", [n for n in list_datasets() if ":" not in n])
def test_synthetic_loaders_have_true_shapes(name):
    cfg = DataConfig(dataset=name, batch_size=2)
    train, test, info = synthetic_loaders(cfg, 3, steps=2)
    assert len(train) == 2 and len(test) == 2
    x, y = next(iter(train))
    shape = (2,) + info.step_shape
    if info.frames is not None:
        shape = (info.frames,) + shape
    assert x.shape == shape and int(y.max()) < info.num_classes
    assert info == dataset_info(cfg, 3)


@pytest.mark.parametrize("field,value,match", [
    ("dataset", "nope", "unknown dataset 'nope'"),
    ("batch_size", 0, "data.batch_size must be a positive int"),
    ("workers", -1, "data.workers must be a non-negative int"),
    ("frame_size", 2.5, "data.frame_size must be a positive int"),
    ("download", "yes", "data.download must be a bool"),
    ("frame_by", "count", r"data.frame_by must be one of \('events', 'time'\)"),
    ("downsample", 0.0, r"data.downsample must be a number in \(0, 1\]"),
    ("denoise_us", -1.0, "data.denoise_us must be a number >= 0"),
])
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**{field: value})
    cfg = DataConfig()
    setattr(cfg, field, value)
    with pytest.raises(ValueError, match=match):
        build_loaders(cfg)


def test_tonic_options_only_apply_to_tonic_datasets():
    with pytest.raises(ValueError, match=r"data.downsample=0.5 only apply to tonic:<name> "
                                         r"datasets, not 'cifar10dvs'"):
        DataConfig(dataset="cifar10dvs", downsample=0.5)


def test_config_fields_are_stable():
    # Run configs embed these names; renaming one breaks saved configs.
    assert [f.name for f in dataclasses.fields(DataConfig)] == [
        "dataset", "root", "download", "batch_size", "eval_batch_size", "workers", "pin_memory",
        "frame_size", "autoaugment", "cutout", "crop_padding", "seed", "cache_dir", "frame_by", "denoise_us",
        "downsample", "synthetic"]


def test_shard_sampler_partitions_exactly():
    data = TensorPairs(torch.zeros(11, 1), torch.zeros(11, dtype=torch.long))
    shards = [list(ShardSampler(data, 3, r)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(11))
    assert [len(s) for s in shards] == [4, 4, 3]


def test_distributed_requires_process_group():
    with pytest.raises(RuntimeError, match="needs torch.distributed initialised"):
        build_loaders(DataConfig(), distributed=True)


def test_distributed_loaders_single_rank(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0,
                            world_size=1)
    try:
        train, test, _ = build_loaders(DataConfig(batch_size=50), distributed=True)
        assert isinstance(train.sampler, torch.utils.data.DistributedSampler)
        train.sampler.set_epoch(0)
        a = [y for _, y in train]
        train.sampler.set_epoch(1)
        b = [y for _, y in train]
        assert not torch.equal(a[0], b[0])
        assert sorted(torch.cat(a).tolist()) == sorted(torch.cat(b).tolist())
        assert sum(len(y) for _, y in test) == len(test.dataset)
    finally:
        dist.destroy_process_group()


def test_workers_and_persistent_workers():
    train, _, _ = build_loaders(DataConfig(workers=1, batch_size=256))
    assert train.persistent_workers and train.num_workers == 1
    x, _ = next(iter(train))
    assert x.shape == (256, 1, 8, 8)
    train0, _, _ = build_loaders(DataConfig(workers=0))
    assert not train0.persistent_workers


def _two_rank_worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        train, test, _ = build_loaders(DataConfig(batch_size=100, eval_batch_size=64),
                                       distributed=True)
        train.sampler.set_epoch(3)
        seen = {"train": list(train.sampler), "test": list(test.sampler),
                "label_sum": sum(int(y.sum()) for _, y in test)}
        gathered = [None] * world
        dist.all_gather_object(gathered, seen)
        if rank == 0:
            torch.save(gathered, f"{out_dir}/gathered.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_partition_train_and_test(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_two_rank_worker, args=(2, str(tmp_path / "pg"), str(tmp_path)), nprocs=2)
    gathered = torch.load(tmp_path / "gathered.pt")
    _, test, _ = build_loaders(DataConfig())
    train0, train1 = gathered[0]["train"], gathered[1]["train"]
    assert len(train0) == len(train1) and not set(train0) & set(train1)
    assert sorted(train0 + train1) == list(range(len(train0) * 2))  # 1438 splits evenly
    assert sorted(gathered[0]["test"] + gathered[1]["test"]) == list(range(len(test.dataset)))
    assert gathered[0]["label_sum"] + gathered[1]["label_sum"] == int(test.dataset.labels.sum())


class WorkerPids(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 5:
            raise DataError(f"sample {i} is corrupt")
        return os.getpid()


def test_workers_leave_stop_signals_to_the_main_process():
    """A SIGTERM or SIGINT sent to the whole process group reaches the workers too; they
    ignore it (the main process stops at a safe point), and a dataset error in a worker reads
    exactly as in the main process."""
    loader = Loader(WorkerPids(), batch_size=1, num_workers=1, persistent_workers=True)
    batches = iter(loader)
    worker = int(next(batches))
    assert worker != os.getpid()
    for sig in (signal.SIGTERM, signal.SIGINT):
        os.kill(worker, sig)
    time.sleep(0.2)
    assert [int(next(batches)) for _ in range(4)] == [worker] * 4  # still alive
    with pytest.raises(DataError) as raised:
        next(batches)
    assert str(raised.value) == "sample 5 is corrupt"
    loader.close()
