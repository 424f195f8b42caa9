"""Textual-inversion embeddings: learned words read from files, offline.

Formats (the kind is read from the content, not the name):

* A1111 ``.pt``: ``{"string_to_param": {"*": (n, width)}, "name": ..., ...}``, read only with
  ``torch.load(weights_only=True)``; any other Python object is refused, never executed;
* A1111 ``.safetensors``: ``{"emb_params": (n, width)}``;
* diffusers' ``learned_embeds.bin`` / ``.safetensors``: ``{"<token>": (width,) or (n, width)}``;
* SDXL pairs (``clip_l`` + ``clip_g``) are recognised and refused by the width check.

Each embedding is named after its file (``cat-toy.pt`` -> ``cat-toy``; a diffusers file called
``learned_embeds`` takes the token stored in it, without its angle brackets) and is written in a
prompt as ``cat-toy`` or ``<cat-toy>``.  Loading keeps the vectors on the CPU in float32; the
core casts them to the model's device and dtype when a prompt uses them (core/embedding_tokens).
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from dreamline.errors import ModelError
from dreamline.models.hashing import sha256_file
from dreamline.models.safe_pickle import refused_global

SUFFIXES = (".pt", ".safetensors", ".bin")
#: The folder beside the models file (configs/models.yaml) that is always searched.
FOLDER_NAME = "embeddings"
#: A1111's "TI hashes" use the first 12 hex digits of the file's sha256.
TI_HASH_DIGITS = 12
#: Text-encoder widths of the well-known model families, for "made for ..." lines.
FAMILIES = {768: "SD 1.x", 1024: "SD 2.x", 1280: "SDXL"}
Report = Callable[[str], None]


class EmbeddingError(ModelError):
    """An embedding file cannot be used (unreadable, not an embedding, wrong width, clash)."""


@dataclass(frozen=True)
class Embedding:
    """One learned word: ``vectors`` is (n, width) float32 on the CPU, n >= 1."""

    name: str
    path: Path
    vectors: torch.Tensor
    short_hash: str  # first 12 hex digits of the file's sha256 (A1111 "TI hashes")
    trained_for: str  # "SD 1.x", "SDXL", a checkpoint name from the file, or "width 64"

    @property
    def width(self) -> int:
        return int(self.vectors.shape[1])


def _family(width: int) -> str:
    return FAMILIES.get(width, f"a text encoder {width} wide")


def _read(path: Path) -> dict[str, Any]:
    """The file's top-level dict; safetensors by magic, else a weights-only pickle."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    is_zip = head.startswith(b"PK")
    is_pickle = head[:1] == b"\x80"
    is_safetensors = head[8:9] == b"{"  # an 8-byte header length, then the JSON header
    if not (is_zip or is_pickle or is_safetensors):
        # said plainly, not safetensors' own "Error while deserializing header: header too small"
        raise EmbeddingError(f"{path}: cannot read it as an embedding (not a torch file: it "
                             "starts with neither a zip nor a pickle header, nor a safetensors "
                             "one; damaged, or another format?)")
    try:
        if is_zip or is_pickle:
            with warnings.catch_warnings():  # torch's note on the pickle protocol is not ours
                warnings.simplefilter("ignore", UserWarning)
                loaded = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            loaded = load_file(str(path), device="cpu")
    except pickle.UnpicklingError as error:
        name = refused_global(error)
        what = f"the Python global {name}" if name else "an unsupported pickle operation"
        raise EmbeddingError(f"{path}: refused: this pickle asks for {what}, which could run "
                             "code; use a .safetensors copy of the embedding") from None
    except (OSError, RuntimeError, ValueError, EOFError, SafetensorError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EmbeddingError(f"{path}: cannot read it as an embedding ({reason})") from None
    if not isinstance(loaded, dict):
        raise EmbeddingError(f"{path}: not an embedding (holds a {type(loaded).__name__}, "
                             "expected a dict of tensors)")
    return loaded


def _vectors_of(path: Path, data: dict[str, Any]) -> tuple[torch.Tensor, str | None, str]:
    """(vectors, the token stored in the file or None, what it was trained for)."""
    trained_for = ""
    if "clip_l" in data and "clip_g" in data:
        vectors = data["clip_g"]
        trained_for = "SDXL"
        token = None
    elif isinstance(data.get("string_to_param"), dict) and "*" in data["string_to_param"]:
        vectors = data["string_to_param"]["*"]
        token = data.get("name") if isinstance(data.get("name"), str) else None
        checkpoint = data.get("sd_checkpoint_name")
        if isinstance(checkpoint, str) and checkpoint:
            trained_for = checkpoint
    elif "emb_params" in data:
        vectors = data["emb_params"]
        token = None
    elif len(data) == 1:
        token, vectors = next(iter(data.items()))
    else:
        keys = ", ".join(sorted(map(str, data))[:5])
        raise EmbeddingError(f"{path}: not a textual-inversion embedding (keys: {keys}); expected "
                             "A1111 string_to_param/emb_params or a diffusers learned_embeds file")
    if not isinstance(vectors, torch.Tensor) or vectors.dim() not in (1, 2) or vectors.numel() == 0:
        raise EmbeddingError(f"{path}: the embedding's vectors are not a (n, width) tensor")
    if vectors.dim() == 1:
        vectors = vectors[None]
    if not trained_for:
        trained_for = _family(int(vectors.shape[1]))
    return vectors.detach().to(torch.float32).clone(), token, trained_for


def load_embedding(path: Path) -> Embedding:
    """Read one embedding file.  Raises EmbeddingError (one line) for anything unusable."""
    path = Path(path)
    if not path.is_file():
        raise EmbeddingError(f"{path}: no such embedding file")
    vectors, token, trained_for = _vectors_of(path, _read(path))
    name = path.stem
    if name == "learned_embeds" and token:
        name = token.strip("<>") or name
    if not name or any(char.isspace() for char in name):
        raise EmbeddingError(f"{path}: an embedding's name cannot contain spaces ({name!r}); "
                             "rename the file")
    return Embedding(name=name, path=path, vectors=vectors,
                     short_hash=sha256_file(path)[:TI_HASH_DIGITS], trained_for=trained_for)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(child for child in path.iterdir()
                      if child.is_file() and child.suffix.lower() in SUFFIXES)
    if path.is_file():
        return [path]
    raise EmbeddingError(f"--embedding_path: {path} is neither an embedding file nor a folder")


class EmbeddingSet:
    """The session's embeddings, by name (prompts match names in any case, as A1111 does, so
    two names that differ only in case are refused)."""

    def __init__(self, embeddings: Iterable[Embedding] = ()) -> None:
        self._by_name: dict[str, Embedding] = {}
        for embedding in embeddings:
            self._add(embedding)

    def _add(self, embedding: Embedding) -> None:
        known = next((item for name, item in self._by_name.items()
                      if name.lower() == embedding.name.lower()), None)
        if known is not None:
            raise EmbeddingError(f"{embedding.path}: the embedding name {embedding.name!r} is "
                                 f"already taken by {known.path}; rename one of the files")
        self._by_name[embedding.name] = embedding

    @classmethod
    def load(cls, paths: Iterable[Path | str], *, report: Report | None = None
             ) -> EmbeddingSet:
        """Embeddings from files and folders (a folder's .pt/.safetensors/.bin files, not its
        subfolders).  A file named directly that cannot be used raises EmbeddingError; a bad
        file inside a folder is skipped with a line to ``report`` (None: raise as well)."""
        found = cls()
        for given in paths:
            root = Path(given).expanduser()
            in_folder = root.is_dir()
            for file in _files(root):
                try:
                    found._add(load_embedding(file))
                except EmbeddingError as error:
                    if not in_folder or report is None:
                        raise
                    report(f"skipped embedding {error}")
        return found

    @property
    def names(self) -> tuple[str, ...]:
        """Every name, sorted (for completion and !embeddings)."""
        return tuple(sorted(self._by_name))

    def get(self, name: str) -> Embedding | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Embedding]:
        return iter(self._by_name[name] for name in self.names)

    def __len__(self) -> int:
        return len(self._by_name)

    def describe(self) -> list[str]:
        """One line per embedding for ``!embeddings``: name, vectors, width, family, file."""
        return [f"<{item.name}>  {item.vectors.shape[0]} vector(s), {item.width} wide "
                f"({item.trained_for}), {item.path}" for item in self]


def embedding_folder(models_file: Path | str) -> Path:
    """The ``embeddings/`` folder beside the models file (it need not exist)."""
    return Path(models_file).expanduser().parent / FOLDER_NAME


def session_embeddings(paths: Iterable[Path | str], models_file: Path | str | None, *,
                       report: Report) -> EmbeddingSet:
    """What a session uses: the ``embeddings/`` folder beside ``models_file`` (when it exists),
    then each ``--embedding_path`` file or folder.  A bad file inside a folder is skipped with
    a line to ``report``; a bad file named directly raises EmbeddingError (one line)."""
    sources: list[Path | str] = []
    if models_file is not None and embedding_folder(models_file).is_dir():
        sources.append(embedding_folder(models_file))
    sources.extend(paths)
    return EmbeddingSet.load(sources, report=report)
