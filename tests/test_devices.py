"""Device and precision choice: the order CUDA > MPS > CPU, and clear refusals."""

from __future__ import annotations

import pytest
import torch

from dreamline import devices
from dreamline.devices import DeviceError, choose_device, choose_dtype, describe
from dreamline.errors import DreamlineError


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend one CUDA GPU is present (nothing is ever allocated on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA Test GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)


def test_auto_picks_cpu_without_gpus(no_gpu: None) -> None:
    assert choose_device() == torch.device("cpu")
    assert choose_device("auto") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch: pytest.MonkeyPatch, fake_cuda: None) -> None:
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert choose_device() == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device() == torch.device("mps")


def test_named_devices(fake_cuda: None) -> None:
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device("CUDA") == torch.device("cuda", 0)
    assert choose_device("cuda:0") == torch.device("cuda", 0)


@pytest.mark.parametrize("requested, fragment", [
    ("cuda", "no CUDA GPU"),
    ("mps", "Apple MPS"),
    ("tpu", "not a device"),
    ("meta", "not supported"),
])
def test_unavailable_or_unknown_device_is_refused(no_gpu: None, requested: str,
                                                  fragment: str) -> None:
    with pytest.raises(DeviceError, match=fragment) as caught:
        choose_device(requested)
    assert repr(requested) in str(caught.value)
    assert isinstance(caught.value, DreamlineError)
    assert "\n" not in str(caught.value)


def test_cuda_index_beyond_the_devices_is_refused(fake_cuda: None) -> None:
    with pytest.raises(DeviceError, match="1 CUDA device"):
        choose_device("cuda:3")


def test_auto_precision_is_half_on_cuda_only() -> None:
    assert choose_dtype(torch.device("cuda", 0)) == torch.float16
    assert choose_dtype("cpu") == torch.float32
    assert choose_dtype("mps") == torch.float32


@pytest.mark.parametrize("name, expected", [
    ("float32", torch.float32), ("autocast", torch.float32), ("fp32", torch.float32),
    ("bfloat16", torch.bfloat16), (" Float32 ", torch.float32),
])
def test_named_precisions_on_cpu(name: str, expected: torch.dtype) -> None:
    assert choose_dtype("cpu", name) == expected


def test_float16_on_cpu_is_refused() -> None:
    with pytest.raises(DeviceError, match="float16 is not supported on the cpu"):
        choose_dtype("cpu", "float16")


def test_bfloat16_on_an_old_gpu_is_refused(fake_cuda: None) -> None:
    with pytest.raises(DeviceError, match="NVIDIA Test GPU"):
        choose_dtype(torch.device("cuda", 0), "bfloat16")
    assert choose_dtype(torch.device("cuda", 0), "float32") == torch.float32


def test_unknown_precision_lists_the_choices() -> None:
    with pytest.raises(DeviceError, match="auto, float32, float16, bfloat16"):
        choose_dtype("cpu", "float8")


def test_describe_names_device_and_precision(fake_cuda: None) -> None:
    assert describe(torch.device("cuda", 0), torch.float16) == (
        "device cuda:0 (NVIDIA Test GPU), precision float16")
    line = describe("cpu", torch.float32)
    assert line.startswith("device cpu (") and line.endswith(", precision float32")
