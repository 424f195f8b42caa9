"""Key bindings added to prompt_toolkit's defaults (Emacs mode, history, completion)."""

from __future__ import annotations

from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent


def make_key_bindings() -> KeyBindings:
    """Ctrl-C clears the line instead of ending the program (the reference died here).

    Ctrl-D on an empty line already raises EOFError in prompt_toolkit, which the loop turns
    into 'goodbye!'.
    """
    bindings = KeyBindings()

    @bindings.add("c-c")
    def _clear_line(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        buffer.reset()  # drops the text, any open completion menu and the validation error

    return bindings
