"""One weighted text -> CLIP conditioning, through compel (InvokeAI's prompt library).

``PromptEncoder.encode(text)`` takes one sub-prompt (no ``[negative]``, no ``text:weight``):
it is cut at ``BREAK``, A1111 emphasis is translated (dreamline.prompt_syntax), and compel
encodes each piece in as many 75-token chunks as it needs (split between words); the pieces are
joined along the token axis.  A piece with no weighting at all is encoded from its own text, so
its tokens (and the pixels) are exactly those of the plain 77-token encoding.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from pyparsing import ParseBaseException

from dreamline.core.embedding_tokens import EmbeddingVocabulary
from dreamline.prompt_syntax import has_groups, split_breaks, to_compel, unescape
from dreamline.quiet import quiet_library
from dreamline.request import RequestError

# Importing compel imports diffusers' Flux/Sana pipelines, whose transformers image processors
# warn (once) on screen that torchvision is missing; dreamline uses none of them.
with quiet_library("transformers"):
    from compel import Compel  # noqa: E402
    from compel.embeddings_provider import SplitLongTextMode  # noqa: E402
    from compel.prompt_parser import (  # noqa: E402
        Blend,
        Conjunction,
        CrossAttentionControlSubstitute,
        FlattenedPrompt,
        PromptParser,
    )


@dataclass(frozen=True)
class Encoded:
    """A text's conditioning: ``tensor`` (1, 77 * chunks, width); ``tokens``: the content
    token ids of each chunk (no start/end/padding); ``embeddings``: names used."""

    tensor: torch.Tensor
    tokens: tuple[tuple[int, ...], ...]
    embeddings: tuple[str, ...]

    @property
    def chunks(self) -> int:
        return len(self.tokens)


def _refuse_unsupported(conjunction: Conjunction, text: str) -> None:
    """compel syntax dreamline does not run: .swap() (cross-attention control) and LoRAs."""
    if getattr(conjunction, "lora_weights", None):
        raise RequestError(f"prompt: {text!r} names a LoRA (withLora); expected a prompt "
                           "without LoRA syntax")
    for prompt in conjunction.prompts:
        flats = prompt.prompts if isinstance(prompt, Blend) else [prompt]
        for flat in flats:
            if isinstance(flat, FlattenedPrompt) and any(
                    isinstance(child, CrossAttentionControlSubstitute) for child in flat.children):
                raise RequestError(f"prompt: {text!r} uses .swap(), which dreamline does not "
                                   "support; expected weights such as (words)1.3 or .blend()")


def _is_plain(conjunction: Conjunction) -> bool:
    """One prompt, not a blend, every fragment at weight 1."""
    if len(conjunction.prompts) != 1 or any(weight != 1 for weight in conjunction.weights):
        return False
    prompt = conjunction.prompts[0]
    return isinstance(prompt, FlattenedPrompt) and all(
        getattr(child, "weight", None) == 1 for child in prompt.children)


class PromptEncoder:
    """compel over one model's tokenizer and text encoder (and, when given, its embeddings)."""

    def __init__(self, tokenizer: Any, text_encoder: Any, device: torch.device,
                 dtype: torch.dtype, vocabulary: EmbeddingVocabulary | None = None) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.device = device
        self.dtype = dtype
        self.vocabulary = vocabulary
        self.max_length = int(tokenizer.model_max_length)
        self.room = self.max_length - 2  # 75 for CLIP: start and end tokens take two
        self._plain = self._compel(tokenizer)
        self._with_embeddings: Compel | None = None

    def _compel(self, tokenizer: Any) -> Compel:
        return Compel(tokenizer=tokenizer, text_encoder=self.text_encoder,
                      truncate_long_prompts=False, device=str(self.device),
                      split_long_text_mode=SplitLongTextMode.WORDS,
                      dtype_for_device_getter=lambda _device: self.dtype)

    def _compel_for(self, used: tuple[str, ...]) -> Compel:
        if not used or self.vocabulary is None:
            return self._plain
        if self._with_embeddings is None:
            self._with_embeddings = self._compel(self.vocabulary.tokenizer)
        return self._with_embeddings

    def encode(self, text: str) -> Encoded:
        """``text``'s conditioning (see the module docstring).  Raises RequestError for compel
        syntax dreamline does not run, EmbeddingError for an embedding of the wrong width."""
        used: tuple[str, ...] = ()
        if self.vocabulary is not None:
            text, used = self.vocabulary.substitute(text)
        compel = self._compel_for(used)
        active = self.vocabulary.active() if used and self.vocabulary is not None \
            else nullcontext()
        tensors: list[torch.Tensor] = []
        tokens: list[tuple[int, ...]] = []
        # compel tokenizes long text untruncated: transformers' over-length warning is wrong here
        with quiet_library("transformers"), active:
            for piece in split_breaks(text):
                tensor, ids = self._encode_piece(compel, piece)
                tensors.append(tensor)
                tokens.extend(self._chunk_tokens(compel, ids))
        joined = torch.cat(tensors, dim=1) if len(tensors) > 1 else tensors[0]
        return Encoded(tensor=joined.to(device=self.device, dtype=self.dtype),
                       tokens=tuple(tokens), embeddings=used)

    def _encode_piece(self, compel: Compel, piece: str) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            conjunction = Compel.parse_prompt_string(to_compel(piece))
        except (PromptParser.ParsingException, ParseBaseException, ValueError) as error:
            # check_methods catches the usual mistakes when the line is parsed; this is for
            # whatever else compel refuses, so it is still one line and not an internal error
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise RequestError(f"prompt: compel cannot read {piece!r} ({first[:80]}); expected "
                               'its syntax, e.g. ("a cat", "a dog").blend(0.7, 0.3)') from error
        _refuse_unsupported(conjunction, piece)
        if _is_plain(conjunction):
            # Weight 1 everywhere: encode the words as typed (compel's fragments lose quotes
            # and spacing), unless grouping parentheses have to go.
            if has_groups(piece):
                flat = conjunction.prompts[0]
                text = " ".join(child.text for child in flat.children)
            else:
                text = unescape(piece)
            provider = compel.conditioning_provider
            tensor, ids = provider.get_embeddings_for_weighted_prompt_fragments(
                text_batch=[[text]], fragment_weights_batch=[[1.0]],
                should_return_tokens=True, device=compel.device)
            return tensor, ids
        tensor, ids, _options = compel.build_conditioning_tensor_for_conjunction(
            conjunction, return_tokenization=True)
        return tensor, ids

    def _chunk_tokens(self, compel: Compel, ids: torch.Tensor) -> list[tuple[int, ...]]:
        """Content token ids per 77-token chunk (``ids`` as compel returns them)."""
        tokenizer = compel.conditioning_provider.tokenizer
        markers = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
        flat = [int(value) for value in ids.reshape(-1).tolist()]
        chunks = [flat[start:start + self.max_length]
                  for start in range(0, len(flat), self.max_length)]
        return [tuple(value for value in chunk if value not in markers) for chunk in chunks] \
            or [()]

    def pad(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Tensors padded to the longest with the empty prompt's chunk, as compel pads."""
        if all(tensor.shape == tensors[0].shape for tensor in tensors):
            return tensors
        with quiet_library("transformers"):
            padded = self._plain.pad_conditioning_tensors_to_same_length(list(tensors))
        return [tensor.to(device=self.device, dtype=self.dtype) for tensor in padded]

    def token_names(self, ids: tuple[int, ...], *, embeddings: bool) -> list[str]:
        """The tokens of ``ids`` as text (embedding tokens shown by their names)."""
        tokenizer = self.vocabulary.tokenizer if embeddings and self.vocabulary is not None \
            else self.tokenizer
        names = tokenizer.convert_ids_to_tokens(list(ids))
        if self.vocabulary is not None and embeddings:
            names = [self.vocabulary.display(name) for name in names]
        return [str(name) for name in names]
