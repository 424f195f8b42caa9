"""Textual-inversion words in a prompt, without touching the cached model.

diffusers' ``load_textual_inversion`` adds a token per vector to the tokenizer and resizes the
text encoder's input embeddings, for good.  Here the tokens go into a *copy* of the tokenizer
(made once, on the first prompt that uses an embedding), and the extra rows are looked up by a
pair of hooks on the text encoder's input embeddings that live only while such a prompt is
encoded.  A prompt without an embedding goes through the untouched tokenizer and model, so it
gives exactly the pixels it gave before.

A multi-vector embedding ``name`` becomes ``<tiK_0> <tiK_1> ...`` (one token per vector, as
diffusers expands ``<name>`` into ``<name> <name>_1 ...``); the internal token names hold only
characters compel's syntax leaves alone.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from dreamline.models.embeddings import Embedding, EmbeddingError, EmbeddingSet


def _token(index: int, vector: int) -> str:
    return f"<ti{index}_{vector}>"


class EmbeddingVocabulary:
    """The embeddings of one session, as one model's tokenizer and text encoder see them."""

    def __init__(self, embeddings: EmbeddingSet, tokenizer: Any, text_encoder: Any) -> None:
        self.embeddings = embeddings
        self.base_tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.width = int(text_encoder.get_input_embeddings().embedding_dim)
        self._order = list(embeddings)
        self._tokens = {item.name: " ".join(_token(index, vector)
                                            for vector in range(item.vectors.shape[0]))
                        for index, item in enumerate(self._order)}
        self._display = {_token(index, vector): f"<{item.name}>" if vector == 0
                         else f"<{item.name}>#{vector}"
                         for index, item in enumerate(self._order)
                         for vector in range(item.vectors.shape[0])}
        names = sorted(self._tokens, key=len, reverse=True)
        alternatives = "|".join(re.escape(name) for name in names)
        # As in A1111 (whose CLIP tokenizer lowercases), "Toy" and "<TOY>" find toy.pt.
        self._canonical = {name.lower(): name for name in names}
        self._pattern = (re.compile(rf"<({alternatives})>|(?<![\w<-])({alternatives})(?![\w>-])",
                                    re.IGNORECASE) if names else None)
        self._tokenizer: Any = None
        self._first_id = 0
        self._extra: torch.Tensor | None = None

    def substitute(self, text: str) -> tuple[str, tuple[str, ...]]:
        """``text`` with each embedding's name (``name`` or ``<name>``) replaced by its tokens,
        and the names used, in order of first use.  Raises EmbeddingError for an embedding
        whose width does not match this text encoder."""
        if self._pattern is None:
            return text, ()
        used: list[str] = []

        def replace(match: re.Match[str]) -> str:
            name = self._canonical[(match.group(1) or match.group(2)).lower()]
            self._check(name)
            if name not in used:
                used.append(name)
            return self._tokens[name]

        return self._pattern.sub(replace, text), tuple(used)

    def _check(self, name: str) -> None:
        item: Embedding | None = self.embeddings.get(name)
        if item is not None and item.width != self.width:
            raise EmbeddingError(
                f"embedding <{name}> ({item.path.name}) is {item.width} wide, made for "
                f"{item.trained_for}; this model's text encoder is {self.width} wide")

    def display(self, token: str) -> str:
        """A token as the user wrote it (``<name>``, ``<name>#1`` for a second vector)."""
        return self._display.get(token, token)

    @property
    def tokenizer(self) -> Any:
        """A copy of the model's tokenizer with one added token per vector of each embedding
        as wide as this text encoder."""
        if self._tokenizer is None:
            tokenizer = copy.deepcopy(self.base_tokenizer)
            # Only the embeddings this text encoder can take: a folder often holds several
            # model families' (an SD 1.x 768-wide one beside an SD 2.x one); naming one of
            # another width is refused by substitute(), the others never block this model's.
            usable = [item for item in self._order if item.width == self.width]
            tokens = [token for item in usable for token in self._tokens[item.name].split()]
            first = len(tokenizer)
            tokenizer.add_tokens(tokens)
            rows = [item.vectors for item in usable]
            self._extra = torch.cat(rows) if rows else torch.zeros(0, self.width)
            self._first_id = first
            self._tokenizer = tokenizer
        return self._tokenizer

    @contextmanager
    def active(self) -> Iterator[None]:
        """While inside, the text encoder looks up the added tokens' vectors (hooks removed on
        exit, even on an error)."""
        tokenizer = self.tokenizer  # builds the rows
        del tokenizer
        layer = self.text_encoder.get_input_embeddings()
        weight = layer.weight
        extra = self._extra
        if extra is None:
            raise RuntimeError("embedding rows were not built")
        extra = extra.to(device=weight.device, dtype=weight.dtype)
        first = self._first_id
        state: dict[str, torch.Tensor] = {}

        def before(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
            ids = args[0]
            added = ids >= first
            state["ids"], state["added"] = ids, added
            return (ids.masked_fill(added, 0),) + tuple(args[1:])

        def after(_module: Any, _args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            ids, added = state["ids"], state["added"]
            if not bool(added.any()):
                return output
            rows = extra[(ids - first).clamp(min=0, max=extra.shape[0] - 1)]
            return torch.where(added[..., None], rows, output)

        handles = [layer.register_forward_pre_hook(before), layer.register_forward_hook(after)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
