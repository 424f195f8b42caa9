"""Short hashes: sha256 prefix, computed once per unchanged file and remembered on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dreamline.models import hashing
from dreamline.models.hashing import HashCache


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every full read of a weights file, in order."""
    reads: list[Path] = []
    real = hashing.sha256_file

    def counting(path: Path) -> str:
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(hashing, "sha256_file", counting)
    return reads


def test_short_hash_is_the_sha256_prefix(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    cache = HashCache(tmp_path / ".model_hashes.json")
    assert cache.sha256(weights) == expected
    assert cache.short_hash(weights) == expected[:10]


def test_hash_is_computed_once_and_survives_a_restart(tmp_path: Path,
                                                      counted: list[Path]) -> None:
    weights = tmp_path / "w.ckpt"
    weights.write_bytes(b"weights v1")
    cache_file = tmp_path / "configs" / ".model_hashes.json"
    first = HashCache(cache_file)
    assert not first.is_cached(weights)
    digest = first.short_hash(weights)
    assert first.is_cached(weights)
    assert first.short_hash(weights) == digest
    assert len(counted) == 1
    assert cache_file.is_file()

    restarted = HashCache(cache_file)  # a new session reads the cache file, not the weights
    assert restarted.short_hash(weights) == digest
    assert len(counted) == 1


def test_a_changed_file_is_hashed_again(tmp_path: Path, counted: list[Path]) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"weights v1")
    cache = HashCache(tmp_path / ".model_hashes.json")
    old = cache.short_hash(weights)
    weights.write_bytes(b"weights v2, longer")
    new = cache.short_hash(weights)
    assert new != old
    assert new == hashlib.sha256(b"weights v2, longer").hexdigest()[:10]
    assert len(counted) == 2


def test_a_corrupt_cache_file_only_costs_a_rehash(tmp_path: Path, counted: list[Path]) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"abc")
    cache_file = tmp_path / ".model_hashes.json"
    cache_file.write_text("{not json", encoding="utf-8")
    assert HashCache(cache_file).short_hash(weights) == hashlib.sha256(b"abc").hexdigest()[:10]
    assert len(counted) == 1
    assert HashCache(cache_file).is_cached(weights)  # the file was rewritten as valid JSON


def test_entries_from_another_process_are_kept(tmp_path: Path) -> None:
    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(b"1")
    two.write_bytes(b"2")
    cache_file = tmp_path / ".model_hashes.json"
    first, second = HashCache(cache_file), HashCache(cache_file)
    assert not second.is_cached(two)  # second has read the (empty) cache now
    first.sha256(one)
    second.sha256(two)  # second's view predates first's entry: it must merge, not clobber
    fresh = HashCache(cache_file)
    assert fresh.is_cached(one) and fresh.is_cached(two)


def _safetensors(path: Path, metadata: dict[str, str]) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"lora_unet_x.lora_down.weight": torch.arange(12.0).reshape(3, 4)}, str(path),
              metadata=metadata)


def test_a1111_lora_hash_skips_the_header_and_is_cached(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    _safetensors(one, {"ss_note": "a"})
    _safetensors(two, {"ss_note": "a much longer note in the header"})
    data = one.read_bytes()
    expected = hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]
    reads: list[Path] = []
    real = hashing.tensor_data_sha256
    monkeypatch.setattr(hashing, "tensor_data_sha256",
                        lambda path: reads.append(Path(path)) or real(path))
    cache_path = tmp_path / "cache" / "hashes.json"
    cache = HashCache(cache_path)
    assert cache.a1111_lora_hash(one) == expected
    assert cache.a1111_lora_hash(two) == expected  # same tensors, other header: same hash
    assert cache.short_hash(one) != cache.short_hash(two)  # our file hash sees the header
    assert HashCache(cache_path).a1111_lora_hash(one) == expected  # remembered on disk
    assert reads == [one.resolve(), two.resolve()]


def test_a1111_lora_hash_of_a_pickle_is_the_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    path.write_bytes(b"\x80\x02not really a pickle")
    whole = hashlib.sha256(path.read_bytes()).hexdigest()
    assert HashCache(None).a1111_lora_hash(path) == whole[:12]
