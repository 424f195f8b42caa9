"""What the writers of sd-metadata and A1111 text share: run info as a dict, numbers as text."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dreamline.request import Request


def as_dict(run_info: Mapping[str, Any] | Any) -> dict[str, Any]:
    """RunInfo arrives as a dataclass from core/ or as a plain dict from tests and tools."""
    if dataclasses.is_dataclass(run_info) and not isinstance(run_info, type):
        return {field.name: getattr(run_info, field.name)
                for field in dataclasses.fields(run_info)}
    return dict(run_info)  # type: ignore[arg-type]  # a Mapping here


def ran(info: Mapping[str, Any], key: str, requested: Any) -> Any:
    """What really ran when core/ reported it, else what was requested."""
    value = info.get(key)
    return requested if value is None else value


def number_text(value: float) -> str:
    """Shortest exact text: '7' for 7.0, repr otherwise ('0.75', '0.3333333333333333')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def request_and_info(request: Request | Any, run_info: Mapping[str, Any] | Any | None
                     ) -> tuple[Request, dict[str, Any]]:
    """Accept (Request, RunInfo/dict) or one GeneratedImage-like object (``.request``,
    ``.info``), so the runner can pass what core/ hands it without unpacking."""
    if run_info is None:
        if isinstance(request, Request):
            return request, {}
        return request.request, as_dict(request.info)
    return request, as_dict(run_info)
