"""The prompt-session factory: history, suggestions, completion, validation, toolbar, keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from dreamline.repl.completer import InvokeCompleter, SwitchSpec
from dreamline.repl.context import ModelManager
from dreamline.repl.history import InvokeHistory
from dreamline.repl.keys import make_key_bindings
from dreamline.repl.toolbar import make_toolbar
from dreamline.repl.validator import LineValidator
from dreamline.request import Request


class PromptSource(Protocol):
    """What the prompt reads from the session each time it is drawn or a line is checked."""

    @property
    def history(self) -> InvokeHistory: ...

    @property
    def seeds_used(self) -> list[int]: ...

    @property
    def models(self) -> ModelManager: ...

    def model_names(self) -> list[str]: ...

    def embedding_names(self) -> list[str]: ...

    def check_line(self, line: str) -> None: ...

    def toolbar_state(self) -> tuple[str, str, Request]: ...


def switch_specs() -> list[SwitchSpec]:
    """The completer's view of the switch table (switches.py)."""
    from dreamline import switches

    kinds = {
        switches.Complete.IMAGE: "image", switches.Complete.PATH: "file",
        switches.Complete.SEED: "seed", switches.Complete.SAMPLER: "sampler",
    }
    specs = []
    for switch in switches.SWITCHES:
        if switch.complete in kinds:
            kind = kinds[switch.complete]
        else:
            kind = "value" if switch.kind.takes_value else "none"
        specs.append(SwitchSpec(switch.names, kind, switch.help, switch.choices))
    return specs


def make_prompt_session(source: PromptSource, *, input: Input | None = None,
                        output: Output | None = None) -> PromptSession[str]:
    """A PromptSession for ``source`` (the Session); ``input``/``output`` for tests."""
    from dreamline.request import SAMPLERS

    seeds: Callable[[], list[int]] = lambda: source.seeds_used  # noqa: E731  read when drawn
    from dreamline.repl.vocabulary import vocabulary_words

    completer = InvokeCompleter(switch_specs(), seeds=seeds, models=source.model_names,
                                samplers=SAMPLERS, embeddings=source.embedding_names,
                                vocabulary=lambda: vocabulary_words(source.models))
    return PromptSession(
        history=source.history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=completer,
        complete_while_typing=False,
        validator=LineValidator(source.check_line),
        validate_while_typing=False,
        bottom_toolbar=make_toolbar(source),
        key_bindings=make_key_bindings(),
        input=input,
        output=output,
    )
