"""The one sampler table: names in every dialect resolve to ours, and everything derives from it."""

import pytest

from dreamline import samplers
from dreamline.core.schedule import SCHEDULERS, SIGMA_SAMPLERS
from dreamline.request import SAMPLERS


@pytest.mark.parametrize("text, expected", [
    ("k_euler_a", ("k_euler_a", None)),
    ("Euler a", ("k_euler_a", None)),
    ("euler_ancestral", ("k_euler_a", None)),
    ("LMS Karras", ("k_lms", "karras")),
    ("  dpm2   a ", ("k_dpm_2_a", None)),
    ("DDIM", ("ddim", None)),
])
def test_resolve_takes_every_dialect(text: str, expected: tuple[str, str | None]) -> None:
    assert samplers.resolve(text) == expected


@pytest.mark.parametrize("text", ["DDIM Karras", "nonsense", "", "Euler a Karras Karras"])
def test_resolve_refuses_what_is_not_a_sampler(text: str) -> None:
    assert samplers.resolve(text) is None


def test_request_scheduler_factory_and_a1111_names_come_from_the_table() -> None:
    assert SAMPLERS == tuple(spec.name for spec in samplers.TABLE)
    assert set(SCHEDULERS) == set(SAMPLERS)
    assert {name: cls.__name__ for name, cls in SCHEDULERS.items()} == {
        spec.name: spec.scheduler for spec in samplers.TABLE}
    assert SIGMA_SAMPLERS == {spec.name for spec in samplers.TABLE if spec.uses_sigmas}
    for spec in samplers.TABLE:
        assert samplers.resolve(samplers.a1111_name(spec.name)) == (spec.name, None)
