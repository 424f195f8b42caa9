"""Key bindings added to prompt_toolkit's defaults (Emacs mode, history, completion)."""

from __future__ import annotations

from prompt_toolkit.filters import has_completions
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent


def make_key_bindings() -> KeyBindings:
    """Ctrl-C clears the line instead of ending the program (the reference died here), and
    Enter with the completion menu open takes the completion instead of running the line.

    Ctrl-D on an empty line already raises EOFError in prompt_toolkit, which the loop turns
    into 'goodbye!'.
    """
    bindings = KeyBindings()

    @bindings.add("c-c")
    def _clear_line(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        buffer.reset()  # drops the text, any open completion menu and the validation error

    @bindings.add("enter", filter=has_completions)
    def _take_completion(event: KeyPressEvent) -> None:
        """The highlighted completion (or the first, if none is) stays; the menu closes."""
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is None and state.completions:
            buffer.apply_completion(state.completions[0])
        buffer.complete_state = None

    return bindings
