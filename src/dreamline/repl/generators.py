"""The Generator of the session's current model, and the session's textual-inversion
embeddings and LoRA library it is made with (each made once)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dreamline.errors import ModelError
from dreamline.repl.context import ModelManager, ModelUnavailable

Say = Callable[[str], None]


class ModelGenerators:
    """The Generator of the manager's current model, made once per loaded model.

    The session's parts are made once, at the first use: the textual-inversion embeddings
    (``embeddings/`` beside ``models_file``, then each ``embedding_paths`` entry) and the LoRA
    library (``loras/`` beside ``models_file``; each file read once while unchanged).
    ``compile_unet``: --compile (each Generator runs its UNet through torch.compile).
    """

    def __init__(self, models: ModelManager, *, say: Say = print,
                 models_file: Path | None = None, embedding_paths: tuple[Path, ...] = (),
                 compile_unet: bool = False) -> None:
        self.models = models
        self.say = say
        self.models_file = models_file
        self.embedding_paths = embedding_paths
        self.compile_unet = compile_unet
        self._parts: tuple[Any, Any] | None = None  # (EmbeddingSet, LoraLibrary)
        self._model: Any = None
        self._generator: Any = None

    def parts(self) -> tuple[Any, Any]:
        """(EmbeddingSet, LoraLibrary) of the session; a bad embedding file named directly
        raises EmbeddingError (one line)."""
        if self._parts is None:
            from dreamline.models.embeddings import session_embeddings
            from dreamline.models.hashing import CACHE_FILE_NAME, HashCache
            from dreamline.models.lora import LoraLibrary, lora_folder
            from dreamline.models.registry import user_cache_dir

            embeddings = session_embeddings(self.embedding_paths, self.models_file,
                                            report=lambda text: self.say(f">> {text}"))
            loras = LoraLibrary(lora_folder(self.models_file),
                                hashes=HashCache(user_cache_dir() / CACHE_FILE_NAME))
            self._parts = (embeddings, loras)
        return self._parts

    def __call__(self) -> Any:
        try:
            model = self.models.current()
        except ModelError as exc:
            raise ModelUnavailable(exc) from None
        if model is not self._model:
            from dreamline.core import Generator

            embeddings, loras = self.parts()
            self._generator = None  # drop the old one before building the new
            self._generator = Generator(model, report=lambda text: self.say(f">> {text}"),
                                        embeddings=embeddings, loras=loras,
                                        compile_unet=self.compile_unet)
            self._model = model
        return self._generator
