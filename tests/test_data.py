"""Samplers, collate, DataLoader (resume, workers) and DataLoaders."""

from __future__ import annotations

import os
from collections import namedtuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import learnloop as ll
from learnloop.data import (
    ArrayDataset,
    BatchSampler,
    DataLoader,
    DataLoaders,
    RandomSampler,
    SequentialSampler,
    collate,
)


def test_lesson_sequential_batches():
    batches = list(BatchSampler(SequentialSampler(10), 3))
    assert [b.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert [b.tolist() for b in BatchSampler(SequentialSampler(10), 3, drop_last=True)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(BatchSampler(SequentialSampler(10), 3)) == 4 and len(BatchSampler(SequentialSampler(10), 3, True)) == 3


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**40), epoch=st.integers(0, 50))
def test_random_sampler_is_a_permutation_determined_by_seed_and_epoch(n, seed, epoch):
    s = RandomSampler(n, seed=seed)
    s.set_epoch(epoch)
    order = s.indices()
    assert sorted(order.tolist()) == list(range(n))
    again = RandomSampler(n, seed=seed)
    again.set_epoch(epoch)
    assert torch.equal(order, again.indices())


def test_random_sampler_differs_across_epochs_and_seeds():
    s = RandomSampler(1000, seed=1)
    e0 = s.indices()
    s.set_epoch(1)
    assert not torch.equal(e0, s.indices())
    assert not torch.equal(e0, RandomSampler(1000, seed=2).indices())


def test_unseeded_sampler_follows_set_seed():
    ll.set_seed(5)
    a = RandomSampler(100).indices()
    ll.set_seed(5)
    assert torch.equal(a, RandomSampler(100).indices())


def test_random_sampler_leaves_global_rng_alone():
    s = RandomSampler(100, seed=0)
    torch.manual_seed(0)
    ref = torch.rand(3)
    torch.manual_seed(0)
    s.indices()
    assert torch.equal(torch.rand(3), ref)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 200), replicas=st.integers(1, 7), seed=st.integers(0, 1000))
def test_shards(n, replicas, seed):
    # training shards: disjoint over the real samples, equal length, together cover everything
    shards = [RandomSampler(n, seed=seed, num_replicas=replicas, rank=r).indices().tolist() for r in range(replicas)]
    assert len({len(s) for s in shards}) == 1
    assert set().union(*shards) == set(range(n))
    assert sum(len(s) for s in shards) - n < replicas
    # validation shards: every sample exactly once, no padding duplicates
    val = [SequentialSampler(n, num_replicas=replicas, rank=r) for r in range(replicas)]
    flat = [i for s in val for i in s.indices().tolist()]
    assert sorted(flat) == list(range(n))
    assert [len(s) for s in val] == [len(s.indices()) for s in val]


def test_shard_argument_errors():
    with pytest.raises(ValueError, match="rank"):
        RandomSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(SequentialSampler(10), 0)


def test_collate_nested_structures():
    Pair = namedtuple("Pair", "a b")
    batch = [
        {"img": torch.full((2, 2), float(i)), "label": i, "meta": (np.array([i, i]), 0.5 * i), "name": f"s{i}", "p": Pair(i, True)}
        for i in range(3)
    ]
    out = collate(batch)
    assert out["img"].shape == (3, 2, 2) and torch.equal(out["img"][:, 0, 0], torch.tensor([0.0, 1.0, 2.0]))
    assert out["label"].dtype == torch.int64 and out["label"].tolist() == [0, 1, 2]
    assert torch.equal(out["meta"][0], torch.tensor([[0, 0], [1, 1], [2, 2]]))
    assert out["meta"][1].dtype == torch.float32 and out["meta"][1].tolist() == [0.0, 0.5, 1.0]
    assert out["name"] == ["s0", "s1", "s2"]
    assert isinstance(out["p"], Pair) and out["p"].b.dtype == torch.bool
    assert isinstance(collate([(1, 2), (3, 4)]), tuple) and isinstance(collate([[1, 2], [3, 4]]), list)


def test_collate_errors_name_the_item():
    with pytest.raises(ValueError, match=r"item 2\[0\] has shape \(3,\) but item 0 has \(2,\)"):
        collate([(torch.zeros(2), 0), (torch.zeros(2), 1), (torch.zeros(3), 2)])
    with pytest.raises(ValueError, match="keys"):
        collate([{"a": 1}, {"b": 2}])
    with pytest.raises(TypeError, match="object"):
        collate([object()])


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3), n=st.integers(1, 6))
def test_collate_matches_stack(sizes, n):
    items = [(torch.randn(*sizes), torch.randint(0, 9, ())) for _ in range(n)]
    xs, ys = collate(items)
    assert torch.equal(xs, torch.stack([x for x, _ in items])) and torch.equal(ys, torch.stack([y for _, y in items]))


def test_array_dataset():
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    ds = ArrayDataset(x, y)
    assert len(ds) == 10 and ds[3][1].item() == 3
    xb, yb = ds.__getitems__(torch.tensor([4, 1]))
    assert yb.tolist() == [4, 1] and xb.tolist() == [[8, 9], [2, 3]]
    with pytest.raises(ValueError, match="same length"):
        ArrayDataset(np.zeros(3), np.zeros(4))


class ListDS:
    """A plain map-style dataset returning dicts (Hugging Face style)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i)]), "y": i % 3}


def test_loader_over_generic_and_torch_datasets():
    dl = DataLoader(ListDS(5), batch_size=2)
    batches = list(dl)
    assert [b["y"].tolist() for b in batches] == [[0, 1], [2, 0], [1]]
    tds = torch.utils.data.TensorDataset(torch.arange(5.0), torch.arange(5))
    assert [b[1].tolist() for b in DataLoader(tds, batch_size=3)] == [[0, 1, 2], [3, 4]]


def test_array_dataset_is_one_gather_per_batch(monkeypatch):
    ds = ArrayDataset(torch.arange(10.0), torch.arange(10))
    monkeypatch.setattr(ArrayDataset, "__getitem__", lambda self, i: pytest.fail("per-item access"))
    assert [b[1].tolist() for b in DataLoader(ds, batch_size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffled_epochs_cover_everything_and_differ():
    dl = DataLoader(ArrayDataset(torch.arange(100)), batch_size=7, shuffle=True, seed=3)
    e0 = torch.cat([b[0] for b in dl])
    e1 = torch.cat([b[0] for b in dl])
    assert sorted(e0.tolist()) == sorted(e1.tolist()) == list(range(100))
    assert not torch.equal(e0, e1) and len(dl) == 15


def test_resume_mid_epoch_gives_the_same_batches():
    ds = ArrayDataset(torch.arange(50), torch.arange(50) * 2)
    ref = DataLoader(ds, batch_size=4, shuffle=True, seed=11)
    expected = [b[0].tolist() for _ in range(3) for b in ref]  # three epochs

    dl = DataLoader(ds, batch_size=4, shuffle=True, seed=11)
    first = []
    for _ in range(1):
        first += [b[0].tolist() for b in dl]
    it = iter(dl)
    for _ in range(5):
        first.append(next(it)[0].tolist())
    state = dl.state_dict()
    assert state["epoch"] == 1 and state["position"] == 5

    resumed = DataLoader(ds, batch_size=4, shuffle=True, seed=999)  # seed comes from the state
    resumed.load_state_dict(state)
    rest = [b[0].tolist() for b in resumed] + [b[0].tolist() for b in resumed]
    assert first + rest == expected


def test_resume_does_not_replay_batches(monkeypatch):
    ds = ArrayDataset(torch.arange(1000))
    dl = DataLoader(ds, batch_size=10, shuffle=True, seed=0)
    dl.load_state_dict({"epoch": 3, "position": 99, "sampler": {"epoch": 3, "seed": 0}})
    calls = []
    orig = ArrayDataset.__getitems__
    monkeypatch.setattr(ArrayDataset, "__getitems__", lambda self, idx: calls.append(1) or orig(self, idx))
    assert len(list(dl)) == 1 and len(calls) == 1


def test_abandoned_pass_starts_a_new_epoch():
    dl = DataLoader(ArrayDataset(torch.arange(20)), batch_size=5, shuffle=True, seed=1)
    it = iter(dl)
    next(it)
    assert dl.state_dict()["position"] == 1  # mid-pass: points at the next batch
    assert len(list(dl)) == 4 and dl.state_dict() == {"epoch": 2, "position": 0, "batch_size": 5, "sampler": {"epoch": 1, "seed": 1}}
    for _ in dl:
        break  # a pass left with break: the loader moves on to the next epoch
    assert dl.state_dict()["epoch"] == 3 and dl.state_dict()["position"] == 0
    next(it, None)  # the superseded first iterator no longer moves the loader
    assert dl.state_dict()["epoch"] == 3 and dl.state_dict()["position"] == 0


def test_one_batch_does_not_move_position():
    dl = DataLoader(ArrayDataset(torch.arange(20)), batch_size=5)
    assert dl.one_batch()[0].tolist() == [0, 1, 2, 3, 4]
    assert dl.state_dict()["position"] == 0 and len(list(dl)) == 4


def test_workers_give_the_same_batches_in_the_same_order():
    ds = ArrayDataset(torch.randn(103, 3), torch.arange(103))
    a = [b[1] for b in DataLoader(ds, batch_size=8, shuffle=True, seed=4)]
    b = [b[1] for b in DataLoader(ds, batch_size=8, shuffle=True, seed=4, num_workers=2)]
    assert len(a) == len(b) == 13 and all(torch.equal(x, y) for x, y in zip(a, b))
    generic = [b["y"] for b in DataLoader(ListDS(9), batch_size=4, num_workers=2)]
    assert [g.tolist() for g in generic] == [[0, 1, 2, 0], [1, 2, 0, 1], [2]]


class EpochDS:
    """Says which process fetched each item, and in which epoch (what `set_epoch` told it)."""

    def __init__(self, n):
        self.n, self.epoch = n, None

    def __len__(self):
        return self.n

    def set_epoch(self, epoch, seed=None):
        self.epoch = epoch

    def __getitem__(self, i):
        return torch.tensor([i, os.getpid(), self.epoch])


@pytest.mark.parametrize("persistent", [False, True])
def test_workers_see_each_epoch_and_persistent_ones_are_kept(persistent):
    dl = DataLoader(EpochDS(12), batch_size=4, shuffle=True, seed=1, num_workers=2, persistent_workers=persistent)
    passes = [torch.cat(list(dl)) for _ in range(3)]
    plain = DataLoader(EpochDS(12), batch_size=4, shuffle=True, seed=1)
    for epoch, (got, want) in enumerate(zip(passes, (torch.cat(list(plain)) for _ in range(3)))):
        assert torch.equal(got[:, 0], want[:, 0]) and set(got[:, 2].tolist()) == {epoch}  # the worker's copy knew the epoch
    pids = [set(p[:, 1].tolist()) for p in passes]
    assert os.getpid() not in pids[0] and (pids[0] == pids[1] == pids[2]) == persistent
    # a pass started while another is open takes over; the old one ends rather than take its batches
    old = iter(dl)
    next(old)
    new = [b[:, 0] for b in dl]
    assert len(new) == 3 and (list(old) == []) == persistent


def test_loader_argument_errors():
    ds = ArrayDataset(torch.arange(5))
    with pytest.raises(ValueError, match="shuffle=True or a sampler"):
        DataLoader(ds, shuffle=True, sampler=SequentialSampler(5))
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(5), 2), drop_last=True)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(42)


def test_dataloaders_from_tensors():
    dls = DataLoaders.from_tensors(torch.randn(100, 2), torch.arange(100), torch.randn(30, 2), torch.arange(30), batch_size=16, seed=0)
    assert dls.train.batch_size == 16 and dls.valid.batch_size == 32
    assert [b[1].tolist() for b in dls.valid][0] == list(range(30))  # not shuffled
    assert isinstance(dls.train.sampler, RandomSampler) and isinstance(dls.valid.sampler, SequentialSampler)
    xb, yb = dls.one_batch()
    assert xb.shape == (16, 2)
    state = dls.state_dict()
    dls.load_state_dict(state)
    with pytest.raises(ValueError, match="both"):
        DataLoaders.from_tensors(torch.randn(4, 2), torch.arange(4), torch.randn(4, 2))


def test_dataloaders_name_a_mistyped_or_foreign_argument_and_pass_the_rest_to_both_loaders():
    x, y = torch.randn(20, 2), torch.arange(20)
    for typed, meant in [("bs", "batch_size"), ("valid_bs", "valid_batch_size"), ("num_worker", "num_workers"), ("colate_fn", "collate_fn")]:
        with pytest.raises(TypeError, match=f"unknown argument '{typed}'. Did you mean '{meant}'"):
            DataLoaders.from_tensors(x, y, x, y, **{typed: 4})
    with pytest.raises(TypeError, match="unknown argument 'xyz'. Its arguments: batch_size"):
        DataLoaders.from_datasets(ArrayDataset(x, y), xyz=1)
    for chosen in ("shuffle", "sampler", "batch_sampler"):
        with pytest.raises(TypeError, match=f"choose '{chosen}' themselves.*DataLoaders\\(DataLoader"):
            DataLoaders.from_tensors(x, y, x, y, **{chosen: None})
    dls = DataLoaders.from_tensors(x, y, x, y, batch_size=8, drop_last=True)
    assert len(dls.train) == 2 and len(dls.valid) == 1  # drop_last reached both: 20 // 8 and 20 // 16


def test_batch_transform_reshapes_for_a_cnn():
    from torch import nn

    x, y = torch.randn(32, 784), torch.randint(0, 10, (32,))
    dls = DataLoaders.from_tensors(x, y, x, y, batch_size=8)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    cbs = [ll.BatchTransform(ll.Normalize(x.mean(), x.std())), ll.BatchTransform(ll.Reshape(1, 28, 28), name="view")]
    learn = ll.Learner(model, dls, cbs=cbs, progress=False)
    learn.fit(1)
    assert len(learn.recorder.losses) == 4


def test_unseeded_samplers_draw_seeds_from_a_wide_range():
    seeds = []
    for s in range(20):
        ll.set_seed(s)
        seeds.append(RandomSampler(10).seed)
    assert len(set(seeds)) == 20 and max(seeds) > 2**40  # not a handful of seeds: every run its own order
    assert all(0 <= s < 2**62 for s in seeds)


def test_sequential_sampler_state_round_trip():
    from learnloop.data import SequentialSampler

    a = SequentialSampler(10, num_replicas=3, rank=1, pad=True)
    a.set_epoch(4)
    b = SequentialSampler(10, num_replicas=3, rank=1, pad=True)
    b.load_state_dict(a.state_dict())
    assert b.epoch == 4 and a.state_dict() == {"epoch": 4} and torch.equal(a.indices(), b.indices())


def test_one_batch_with_one_batch_and_a_custom_collate():
    ds = ArrayDataset(torch.arange(3.0))
    dl = DataLoader(ds, batch_size=5, collate_fn=lambda items: ("mine", len(items)))  # one short batch
    assert dl.one_batch() == ("mine", 3) == next(iter(dl))
    with pytest.raises(ValueError, match="^one_batch: this DataLoader yields no batches"):
        DataLoader(ds, batch_size=5, drop_last=True).one_batch()
    # over a plain list of indices as the sampler, too
    assert DataLoader(ArrayDataset(torch.arange(10)), batch_size=2, sampler=[3, 1, 2, 0]).one_batch()[0].tolist() == [3, 1]


def test_loader_state_checks_and_a_state_without_sampler():
    ds = ArrayDataset(torch.arange(20))
    dl = DataLoader(ds, batch_size=4, shuffle=True, seed=3)
    with pytest.raises(KeyError, match=r"the state lacks \['position'\]; it was not made by DataLoader.state_dict"):
        dl.load_state_dict({"epoch": 1})
    with pytest.raises(ValueError, match="saved by a loader with batch_size=5, but this one has batch_size=4"):
        dl.load_state_dict({"epoch": 1, "position": 2, "batch_size": 5})
    dl.load_state_dict({"epoch": 2, "position": 1})  # no sampler state (a loader over a sampler without one): the seed stays
    assert dl.state_dict() == {"epoch": 2, "position": 1, "batch_size": 4, "sampler": {"epoch": 0, "seed": 3}}
    assert len(list(dl)) == 4


def test_dataloaders_state_round_trip_includes_the_validation_position():
    def make():
        x = torch.arange(40.0)
        return DataLoaders.from_tensors(x[:24], x[:24], x[24:], x[24:], batch_size=4, seed=0)  # valid: 2 batches of 8

    dls = make()
    it = iter(dls.valid)
    next(it)
    state = dls.state_dict()
    assert state["valid"] == dls.valid.state_dict() and state["valid"]["position"] == 1
    fresh = make()
    fresh.load_state_dict(state)
    assert [b[0].tolist() for b in fresh.valid] == [list(range(32, 40))]  # continues with the second batch
    alone = DataLoaders(make().train)  # no validation loader: none saved, and a saved one is ignored
    assert alone.state_dict()["valid"] is None
    alone.load_state_dict(state)
    fresh = make()
    fresh.load_state_dict({"train": state["train"], "valid": None})  # nothing saved for validation: it starts afresh
    assert fresh.valid.state_dict()["position"] == 0
