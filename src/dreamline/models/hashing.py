"""Short model hashes: the first 10 hex digits of the weights file's sha256.

The hash goes into every image's metadata so a command can be traced to the exact weights.
Hashing a 2-4 GB checkpoint takes many seconds, so each result is kept in a small JSON file
(in the user's cache folder, see registry.user_cache_dir) keyed by absolute path, size and
modification time: an unchanged file is never read twice, and a replaced file (new size or
mtime) is hashed again.

LoRAs are also named by A1111's own hash (its ``Lora hashes`` field, what Civitai and A1111 match
on): for a .safetensors file the sha256 of the bytes after its header (the 8-byte length and the
JSON header are skipped, so editing the file's metadata keeps the hash), for any other file the
sha256 of the whole file; the first 12 hex digits are shown.  It is kept in the same cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SHORT_HASH_DIGITS = 10
A1111_LORA_HASH_DIGITS = 12
_CHUNK = 1 << 20  # 1 MiB: streaming, never the whole file in memory
CACHE_FILE_NAME = "model_hashes.json"


def sha256_file(path: Path) -> str:
    """The full sha256 hex digest of ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tensor_data_sha256(path: Path) -> str:
    """A1111's LoRA hash in full: sha256 of a .safetensors file's bytes after its header (the
    little-endian 8-byte header length, then the header); of the whole file otherwise.

    Raises OSError when the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if Path(path).suffix.lower() == ".safetensors":
            length = int.from_bytes(handle.read(8), "little")
            handle.seek(8 + length)
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def short_hash(sha256_hex: str) -> str:
    return sha256_hex[:SHORT_HASH_DIGITS]


class HashCache:
    """sha256 digests of weights files, remembered in ``cache_path`` between runs.

    A cache file that cannot be read (corrupt, or written by something else) is treated as
    empty, and one that cannot be written (read-only folder) only costs a rehash next run:
    neither is worth stopping the user for.
    """

    def __init__(self, cache_path: Path | None) -> None:
        self.cache_path = cache_path
        self._entries: dict[str, dict[str, Any]] | None = None

    def _read_file(self) -> dict[str, dict[str, Any]]:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {key: value for key, value in data.items() if isinstance(value, dict)}

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read_file()
        return self._entries

    def _save(self) -> None:
        if self.cache_path is None:
            return
        # Another dreamline process may have added entries since we read the file: keep them.
        merged = self._read_file()
        merged.update(self._load())
        self._entries = merged
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=".model_hashes.", suffix=".tmp",
                                             dir=self.cache_path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self._load(), handle, indent=1, sort_keys=True)
            os.replace(temp_name, self.cache_path)
        except OSError:
            return

    def _cached(self, resolved: Path, key: str = "sha256") -> str | None:
        stat = resolved.stat()
        known = self._load().get(str(resolved))
        if (known is not None and known.get("size") == stat.st_size
                and known.get("mtime_ns") == stat.st_mtime_ns
                and isinstance(known.get(key), str)):
            return str(known[key])
        return None

    def _remember(self, resolved: Path, key: str, digest: str) -> None:
        """Store one digest of the file, keeping the entry's others while the file is the same."""
        stat = resolved.stat()
        known = self._load().get(str(resolved))
        entry: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if (known is not None and known.get("size") == stat.st_size
                and known.get("mtime_ns") == stat.st_mtime_ns):
            entry = {**known, **entry}
        entry[key] = digest
        self._load()[str(resolved)] = entry
        self._save()

    def is_cached(self, path: Path) -> bool:
        """Whether ``sha256(path)`` will answer without reading the file."""
        return self._cached(Path(path).resolve()) is not None

    def sha256(self, path: Path) -> str:
        """The file's full sha256, from the cache when its size and mtime are unchanged."""
        resolved = Path(path).resolve()
        known = self._cached(resolved)
        if known is not None:
            return known
        digest = sha256_file(resolved)
        self._remember(resolved, "sha256", digest)
        return digest

    def a1111_lora_hash(self, path: Path) -> str:
        """A1111's LoRA hash of the file (12 hex digits, see ``tensor_data_sha256``), from the
        cache when the file's size and mtime are unchanged."""
        resolved = Path(path).resolve()
        known = self._cached(resolved, "addnet_sha256")
        if known is None:
            known = tensor_data_sha256(resolved)
            self._remember(resolved, "addnet_sha256", known)
        return known[:A1111_LORA_HASH_DIGITS]

    def short_hash(self, path: Path) -> str:
        """First 10 hex digits of the file's sha256 (the form shown and stored in images)."""
        return short_hash(self.sha256(path))
