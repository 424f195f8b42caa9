"""The Ray worker as a plain object (no Ray): it generates what a local Generator does, and out
of memory climbs repl/memory.py's ladder, keeping the images already made."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from core_fixtures import SIZE

from dreamline.batch.worker import LineWorker, WorkerSettings
from dreamline.repl.runner import OutOfMemory
from dreamline.request import Request

REQUEST = Request(prompt="a red fox", steps=2, seed=3, width=SIZE, height=SIZE, iterations=2)


@pytest.fixture()
def worker(model_files) -> LineWorker:  # type: ignore[no-untyped-def]
    return LineWorker(WorkerSettings(models_file=str(model_files.registry_yaml), threads=1))


def _failing(worker: LineWorker, failures: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the generator's second image run out of memory ``failures`` times; the indexes
    each attempt started from are returned."""
    generator = worker.generators()
    real = generator.iter_generate
    starts: list[int] = []

    def iter_generate(request: Request, **options: Any) -> Any:
        starts.append(options.get("first", 0))
        for index, image in enumerate(real(request, **options), start=options.get("first", 0)):
            if index == 1 and len(starts) <= failures:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            yield image

    monkeypatch.setattr(generator, "iter_generate", iter_generate)
    return starts


def test_a_worker_makes_the_local_generators_pixels(worker: LineWorker) -> None:
    outcome = worker.generate(None, REQUEST, None)
    assert outcome.error is None and len(outcome.images) == 2
    local = worker.generators().generate(REQUEST)
    for remote, here in zip(outcome.images, local, strict=True):
        assert np.array_equal(np.asarray(remote.image), np.asarray(here.image))


def test_out_of_memory_retries_only_what_is_left(worker: LineWorker,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = worker.generate(None, REQUEST, None).images
    starts = _failing(worker, 1, monkeypatch)
    outcome = worker.generate(None, REQUEST, None)
    assert outcome.error is None and starts == [0, 1]  # the retry made image 2 only
    assert [image.request.seed for image in outcome.images] == \
        [image.request.seed for image in fresh]
    assert np.array_equal(np.asarray(outcome.images[1].image), np.asarray(fresh[1].image))
    assert any(f"out of memory at {SIZE}x{SIZE}; retried after freeing memory: worked" in note
               for note in outcome.notes), outcome.notes


def test_out_of_memory_on_every_rung_is_one_error_and_keeps_the_first_image(
        worker: LineWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing(worker, 99, monkeypatch)
    outcome = worker.generate(None, REQUEST, None)
    assert isinstance(outcome.error, OutOfMemory)
    assert str(outcome.error).startswith(f"out of memory at {SIZE}x{SIZE} on ")
    assert len(outcome.images) == 1  # made before the failure: the driver still saves it
