"""Text conditioning: CLIP embeddings for the weighted sub-prompts and the negative prompt.

``a cat:2 a dog:1`` becomes the weighted sum of each part's embedding (weights from
dreamline.prompts, normalised unless -x); the unconditional embedding is the encoding of the
[negative] words, or of "" when there are none, as in the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dreamline.prompts import split_prompt

Report = Callable[[str], None]


@dataclass(frozen=True)
class Conditioning:
    cond: torch.Tensor  # (1, 77, dim): weighted sum of the positive parts
    uncond: torch.Tensor  # (1, 77, dim): the negative prompt's encoding


class TextEncoder:
    """Tokenize (pad to 77, truncate) and encode with CLIP, reporting what was cut off."""

    def __init__(self, tokenizer: Any, text_encoder: Any, device: torch.device,
                 dtype: torch.dtype, report: Report) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.device = device
        self.dtype = dtype
        self.report = report
        self.max_length = int(tokenizer.model_max_length)

    def _token_ids(self, text: str, log_tokens: bool, label: str) -> torch.Tensor:
        """Token ids padded to max_length; tells the user about tokens beyond it."""
        # verbose=False: the library's own over-length warning would go straight to the
        # screen; ours below says what was cut off.
        full = self.tokenizer(text, padding=False, truncation=False, verbose=False).input_ids
        kept = self.tokenizer(text, padding="max_length", max_length=self.max_length,
                              truncation=True, return_tensors="pt").input_ids
        content = full[1:-1]  # without start/end tokens
        room = self.max_length - 2
        if log_tokens:
            shown = self.tokenizer.convert_ids_to_tokens(content[:room])
            self.report(f"{label} tokens ({min(len(content), room)}): " + " ".join(shown))
        if len(content) > room:
            lost = self.tokenizer.decode(content[room:], clean_up_tokenization_spaces=False)
            self.report(f"warning: {label} is {len(content)} tokens, over the limit of {room}; "
                        f"ignored: {lost!r}")
        return kept

    def encode(self, text: str, *, log_tokens: bool = False, label: str = "prompt"
               ) -> torch.Tensor:
        ids = self._token_ids(text, log_tokens, label).to(self.device)
        hidden = self.text_encoder(ids, attention_mask=None)[0]
        return hidden.to(dtype=self.dtype)

    def conditioning(self, prompt: str, *, normalize: bool = True, log_tokens: bool = False
                     ) -> Conditioning:
        parts = split_prompt(prompt, normalize=normalize)
        positive = parts.positive if parts.positive else (("", 1.0),)
        weighted = []
        for index, (text, weight) in enumerate(positive):
            label = "prompt" if len(positive) == 1 else f"sub-prompt {index + 1} {text!r}"
            weighted.append(self.encode(text, log_tokens=log_tokens, label=label) * weight)
        cond = weighted[0]
        for embedding in weighted[1:]:
            cond = cond + embedding
        uncond = self.encode(parts.negative, log_tokens=log_tokens and bool(parts.negative),
                             label="negative prompt")
        return Conditioning(cond=cond, uncond=uncond)
