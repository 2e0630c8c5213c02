"""The data loader: same batches in any worker set-up, per-epoch shuffling, clear errors from workers."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest
import torch

from faceyolo.data.loader import EpochSampler, FaceLoader, create_dataloader
from faceyolo.errors import FaceyoloError
from test_dataset import write_tiny_dataset


class _DiesOnItemTwo:
    """A dataset whose worker process is killed (as by the OOM killer) when it loads item 2."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, item):
        index, _epoch = item
        if index == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.zeros(1)


class _RaisesOnItemOne:
    def __len__(self) -> int:
        return 2

    def __getitem__(self, item):
        if item[0] == 1:
            raise FaceyoloError("images/b.jpg: cannot decode image")
        return torch.zeros(1)


def _batches(loader, epoch: int) -> list:
    loader.set_epoch(epoch)
    return [(images.clone(), targets.clone(), paths) for images, targets, paths, _ in loader]


def test_spawn_workers_yield_the_same_batches_as_the_main_process(tmp_path):
    images = write_tiny_dataset(tmp_path, count=6)
    settings = {"augment": True, "seed": 5, "hyp": {"mosaic": 1.0}}
    in_process, _ = create_dataloader(images, 64, 3, workers=0, **settings)
    spawned, _ = create_dataloader(images, 64, 3, workers=2, start_method="spawn", **settings)
    assert spawned.workers == 2
    for epoch in (0, 1):  # persistent workers must see the new epoch
        expected, got = _batches(in_process, epoch), _batches(spawned, epoch)
        assert len(expected) == len(got) == 2
        for (xa, ya, pa), (xb, yb, pb) in zip(expected, got, strict=True):
            assert pa == pb and torch.equal(xa, xb) and torch.equal(ya, yb)


def test_shuffle_differs_between_epochs_and_repeats_under_the_seed():
    orders = [[i for i, _ in EpochSampler(20, shuffle=True, seed=1).__iter__()] for _ in range(2)]
    assert orders[0] == orders[1] and sorted(orders[0]) == list(range(20))
    sampler = EpochSampler(20, shuffle=True, seed=1)
    sampler.set_epoch(1)
    assert [i for i, _ in sampler] != orders[0]
    assert {epoch for _, epoch in sampler} == {1}


def test_validation_loader_keeps_rect_order_without_shuffling(tmp_path):
    images = write_tiny_dataset(tmp_path, count=6)
    loader, dataset = create_dataloader(images, 96, 3, rect=True, pad=0.5)
    paths = [p for _, _, batch_paths, _ in loader for p in batch_paths]
    assert paths == dataset.image_files


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_killed_worker_ends_the_epoch_with_a_faceyolo_error():
    loader = FaceLoader(
        _DiesOnItemTwo(), batch_size=2, workers=2, start_method="fork", collate_fn=torch.stack
    )
    with pytest.raises(FaceyoloError, match="data loader worker died"):
        list(loader)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_an_error_in_a_worker_arrives_as_one_line():
    loader = FaceLoader(
        _RaisesOnItemOne(), batch_size=2, workers=1, start_method="fork", collate_fn=torch.stack
    )
    assert loader.workers == 1
    with pytest.raises(FaceyoloError) as err:
        list(loader)
    assert str(err.value) == "images/b.jpg: cannot decode image"
