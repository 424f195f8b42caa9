"""Text conditioning: CLIP embeddings for the weighted sub-prompts and the negative prompt.

``a cat:2 a dog:1`` becomes the weighted sum of each part's embedding (weights from
dreamline.prompts, normalised unless -x); the unconditional embedding is the encoding of the
[negative] words, or of "" when there are none, as in the reference.  Each part may use the
attention-weighting syntax (``(word)1.3``, ``word+``, ``(word:1.3)``, ``.blend()``, ``.and()``)
and be longer than 75 tokens: core/prompt_encoder encodes it with compel in 75-token chunks
(``BREAK`` starts a new one).  Parts and the negative are padded with the empty prompt's chunk
to the same number of chunks, as compel does, and a line says how many were used.

Each distinct text is encoded once per text-encoder state (the ``weights`` key the caller gives,
e.g. the active LoRAs) and kept in a small LRU (dreamline.core.cache), so the empty negative and
a prompt repeated across images and lines do not run CLIP again; the tensors are the same ones a
fresh encoding gives, so pixels do not change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch

from dreamline.core.cache import LRU, TEXT_ENTRIES
from dreamline.core.embedding_tokens import EmbeddingVocabulary
from dreamline.core.prompt_encoder import Encoded, PromptEncoder
from dreamline.models.embeddings import EmbeddingSet
from dreamline.prompts import split_prompt
from dreamline.plural import counted

# "<name>": how A1111 and InvokeAI users write a textual-inversion embedding's word
_ANGLE_WORD = re.compile(r"(?<!\\)<([\w.-]+)>")

Report = Callable[[str], None]


@dataclass(frozen=True)
class Conditioning:
    """``cond`` and ``uncond`` are (1, 77 * chunks, width) in the model's dtype."""

    cond: torch.Tensor  # weighted sum of the positive parts
    uncond: torch.Tensor  # the negative prompt's encoding
    embeddings: tuple[str, ...] = ()  # names of the textual-inversion embeddings used
    chunks: int = 1  # how many 77-token chunks each tensor holds


class TextEncoder:
    """Encode prompts with CLIP through compel, reporting long prompts' chunks.

    ``embeddings``: textual-inversion words usable in the prompt and the negative (None: none).
    """

    def __init__(self, tokenizer: Any, text_encoder: Any, device: torch.device,
                 dtype: torch.dtype, report: Report,
                 embeddings: EmbeddingSet | None = None) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.device = device
        self.dtype = dtype
        self.report = report
        self.max_length = int(tokenizer.model_max_length)
        vocabulary = (EmbeddingVocabulary(embeddings, tokenizer, text_encoder)
                      if embeddings is not None and len(embeddings) else None)
        self.encoder = PromptEncoder(tokenizer, text_encoder, device, dtype, vocabulary)
        self.known = {name.lower() for name in embeddings.names} if embeddings else set()
        # (text, weights key) -> Encoded; the tokenizer, encoder and embeddings are fixed here
        self.cache: LRU[Encoded] = LRU(TEXT_ENTRIES)

    def _encoded(self, text: str, log_tokens: bool, label: str,
                 weights: Hashable = ()) -> Encoded:
        encoded = self.cache.get_or_make((text, weights), lambda: self.encoder.encode(text))
        if log_tokens:
            for index, chunk in enumerate(encoded.tokens):
                shown = self.encoder.token_names(chunk, embeddings=bool(encoded.embeddings))
                where = f" chunk {index + 1}" if encoded.chunks > 1 else ""
                self.report(f"{label} tokens{where} ({len(chunk)}): " + " ".join(shown))
        return encoded

    def encode(self, text: str, *, log_tokens: bool = False, label: str = "prompt",
               weights: Hashable = ()) -> torch.Tensor:
        """One text's conditioning, (1, 77 * chunks, width); weighting syntax allowed.
        ``weights`` as for ``conditioning``."""
        with torch.inference_mode():
            return self._encoded(text, log_tokens, label, weights).tensor

    def conditioning(self, prompt: str, *, normalize: bool = True, log_tokens: bool = False,
                     weights: Hashable = ()) -> Conditioning:
        """The prompt's cond/uncond pair.  Raises RequestError for a bad prompt (weights adding
        up to zero, unsupported compel syntax) and EmbeddingError for an embedding of the wrong
        width.

        ``weights`` names the text encoder's current weights (the active LoRAs and their
        strengths; () for the plain model): a text's kept encoding is reused only under the same
        key, so the caller must change it whenever it changes the text encoder.
        """
        parts = split_prompt(prompt, normalize=normalize)
        positive = parts.positive if parts.positive else (("", 1.0),)
        used: list[str] = []
        encoded: list[tuple[Encoded, float]] = []
        with torch.inference_mode():
            for index, (text, weight) in enumerate(positive):
                label = "prompt" if len(positive) == 1 else f"sub-prompt {index + 1} {text!r}"
                encoded.append((self._encoded(text, log_tokens, label, weights), weight))
            negative = self._encoded(parts.negative, log_tokens and bool(parts.negative),
                                     "negative prompt", weights)
            tensors = self.encoder.pad([item.tensor for item, _ in encoded] + [negative.tensor])
            cond = tensors[0] * encoded[0][1]
            for tensor, (_, weight) in zip(tensors[1:-1], encoded[1:], strict=True):
                cond = cond + tensor * weight
            uncond = tensors[-1]
        for item in [entry for entry, _ in encoded] + [negative]:
            used.extend(name for name in item.embeddings if name not in used)
        chunks = int(cond.shape[1]) // self.max_length
        self._report_chunks([item for item, _ in encoded], negative, chunks)
        self._report_unknown([text for text, _ in positive] + [parts.negative])
        return Conditioning(cond=cond, uncond=uncond, embeddings=tuple(used), chunks=chunks)

    def _report_unknown(self, texts: list[str]) -> None:
        """``<name>`` that names no loaded embedding is encoded as the text it is: said once,
        so a typo or a missing file is not silently another picture."""
        unknown: dict[str, str] = {}  # lower case -> as first written
        for text in texts:
            for name in _ANGLE_WORD.findall(text):
                if name.lower() not in self.known:
                    unknown.setdefault(name.lower(), f"<{name}>")
        if unknown:
            names = ", ".join(unknown.values())
            self.report(f"{names}: no such embedding loaded (see !embeddings); encoded as "
                        "plain text")

    def _report_chunks(self, positive: list[Encoded], negative: Encoded,
                       total: int) -> None:
        if total <= 1:
            return
        room = self.max_length - 2
        counts = ", ".join(
            f"{'prompt' if len(positive) == 1 else f'sub-prompt {index + 1}'} "
            f"{counted(sum(map(len, item.tokens)), 'token')} in {item.chunks}"
            for index, item in enumerate(positive))
        counts += f", negative {counted(sum(map(len, negative.tokens)), 'token')} in " \
            f"{negative.chunks}"
        long = any(sum(map(len, item.tokens)) > room for item in [*positive, negative])
        cause = "long prompt" if long else "prompt split by BREAK or .and()"
        self.report(f"{cause}: {total} chunks of {room} tokens ({counts}; shorter ones "
                    "padded to match)")
