"""Whether the optional Ray extra is installed, and how to say it is not."""

from __future__ import annotations

import importlib.util

from dreamline.errors import DreamlineError

INSTALL_HINT = "pip install 'dreamline[ray]'"


class RayMissing(DreamlineError):
    """--ray was asked for but the ray package is not installed."""


def require_ray() -> None:
    """Raise RayMissing (one line with the install command) unless ``ray`` can be imported."""
    if importlib.util.find_spec("ray") is None:
        raise RayMissing(f"--ray: Ray is not installed; install the extra with: {INSTALL_HINT}")
