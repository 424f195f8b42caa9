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
        for schedule in spec.schedules:
            name, said = samplers.resolve(samplers.a1111_name(spec.name, schedule)) or ("", "")
            assert name == spec.name
            # an unsuffixed label means the model's own schedule only where A1111 agrees
            assert said == (None if schedule == spec.a1111_automatic == "model" else schedule)


@pytest.mark.parametrize("text, expected", [
    # A1111's labels, with the pre-1.9 schedule suffix or without
    ("DPM++ 2M", ("k_dpmpp_2m", None)),
    ("DPM++ 2M Karras", ("k_dpmpp_2m", "karras")),
    ("DPM++ 2M SDE Exponential", ("k_dpmpp_2m_sde", "exponential")),
    ("DPM++ 2M SDE Karras", ("k_dpmpp_2m_sde", "karras")),
    ("DPM++ 2M Uniform", ("k_dpmpp_2m", "model")),
    ("DPM++ SDE Karras", ("k_dpmpp_sde", "karras")),
    ("DPM++ 2S a Karras", ("k_dpmpp_2s_a", "karras")),
    ("DPM++ 3M SDE Exponential", ("k_dpmpp_3m_sde", "exponential")),
    ("UniPC", ("unipc", None)), ("DEIS", ("deis", None)), ("LCM", ("lcm", None)),
    ("DDPM", ("ddpm", None)), ("Euler a Exponential", ("k_euler_a", "exponential")),
    # ComfyUI's sampler_name values
    ("dpmpp_2m", ("k_dpmpp_2m", None)), ("dpmpp_2m_sde", ("k_dpmpp_2m_sde", None)),
    ("dpmpp_2m_sde_gpu", ("k_dpmpp_2m_sde", None)), ("dpmpp_sde", ("k_dpmpp_sde", None)),
    ("uni_pc", ("unipc", None)), ("deis", ("deis", None)), ("lcm", ("lcm", None)),
    ("ddpm", ("ddpm", None)), ("dpmpp_3m_sde", ("k_dpmpp_3m_sde", None)),
    ("dpmpp_2s_ancestral", ("k_dpmpp_2s_a", None)),
    # ours
    ("k_dpmpp_2m", ("k_dpmpp_2m", None)), ("k_dpmpp_2s_a", ("k_dpmpp_2s_a", None)),
])
def test_resolve_takes_the_new_samplers_in_every_dialect(text: str,
                                                          expected: tuple[str, str | None]) -> None:
    assert samplers.resolve(text) == expected


@pytest.mark.parametrize("text", ["LCM Karras", "DDPM Exponential", "DPM++ 2M Polyexponential",
                                  "DPM adaptive"])
def test_resolve_refuses_schedules_a_sampler_cannot_take_and_unknown_samplers(text: str) -> None:
    assert samplers.resolve(text) is None


@pytest.mark.parametrize("sampler_name, scheduler, expected", [
    ("dpmpp_2m", "karras", ("k_dpmpp_2m", "karras")),
    ("euler_ancestral", "karras", ("k_euler_a", "karras")),
    ("dpmpp_2m_sde", "exponential", ("k_dpmpp_2m_sde", "exponential")),
    ("euler", "normal", ("k_euler", "model")),
    ("uni_pc", "Karras", ("unipc", "karras")),
])
def test_comfy_sampler_and_scheduler_pairs(sampler_name: str, scheduler: str,
                                           expected: tuple[str, str]) -> None:
    assert samplers.resolve_comfy(sampler_name, scheduler) == expected


@pytest.mark.parametrize("scheduler", ["simple", "sgm_uniform", "ddim_uniform", "beta"])
def test_comfy_schedulers_without_an_equivalent_are_refused_by_name(scheduler: str) -> None:
    with pytest.raises(samplers.ScheduleNameError,
                       match=f"ComfyUI scheduler '{scheduler}' has no dreamline equivalent; "
                             "expected one of normal, karras, exponential"):
        samplers.resolve_comfy("dpmpp_2m", scheduler)
    assert samplers.resolve_comfy("no_such_sampler", "karras") is None


@pytest.mark.parametrize("label, sampler, expected", [
    ("Automatic", "k_dpmpp_2m", "karras"), ("Automatic", "k_dpmpp_2m_sde", "exponential"),
    ("Automatic", "k_euler_a", "model"), ("Uniform", "k_dpmpp_2m", "model"),
    ("Karras", "k_lms", "karras"), ("exponential", "unipc", "exponential"),
])
def test_a1111_schedule_types(label: str, sampler: str, expected: str) -> None:
    assert samplers.a1111_schedule(label, sampler) == expected


def test_a1111_schedule_types_without_an_equivalent_are_refused() -> None:
    with pytest.raises(samplers.ScheduleNameError, match="'Align Your Steps' has no dreamline"):
        samplers.a1111_schedule("Align Your Steps", "k_dpmpp_2m")


def test_a1111_names_say_the_schedule_where_automatic_would_differ() -> None:
    assert samplers.a1111_name("k_lms") == "LMS"
    assert samplers.a1111_name("k_lms", "karras") == "LMS Karras"
    assert samplers.a1111_name("k_dpmpp_2m") == "DPM++ 2M Uniform"
    assert samplers.a1111_name("k_dpmpp_2m_sde", "exponential") == "DPM++ 2M SDE Exponential"


def test_only_samplers_with_a_sigma_schedule_take_schedule_types() -> None:
    assert set(samplers.SCHEDULED_NAMES) == set(samplers.NAMES) - {"ddim", "plms", "lcm", "ddpm"}
