"""Error types for user-facing failures.

Anything derived from DreamlineError is a user's mistake or an expected condition (a missing
file, a bad value): the REPL prints its message as one line and goes on.  Anything else is a bug:
one line on screen, the traceback in the log file.
"""


class DreamlineError(Exception):
    """A failure the user can fix; its message is one complete line."""


class ModelError(DreamlineError):
    """A model file is missing, of the wrong kind, or not an SD 1.x model."""


class ImageError(DreamlineError):
    """An init image or mask cannot be used."""
