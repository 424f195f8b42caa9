"""Contract tests for the diffusers seam (core/schedule.py), one group per scheduler family.

core/schedule.py reads scheduler internals that diffusers may change in any release (we pin
0.42.x).  Each test checks one thing we rely on, directly, and fails with "diffusers changed X"
rather than with a pixel difference somewhere downstream.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from diffusers import (
    DPMSolverSDEScheduler,
    EulerAncestralDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
)

from core_fixtures import tiny_model
from dreamline import samplers as sampler_table
from dreamline.core.schedule import (
    SCHEDULERS,
    SIGMA_SAMPLERS,
    Schedule,
    brownian_seed,
    make_scheduler,
)

STEPS = 6
SHAPE = (1, 4, 2, 2)
TWO_CALL = ("k_heun", "k_dpm_2", "k_dpm_2_a", "k_dpmpp_sde")  # two calls per sampling step
DPM2 = ("k_dpm_2", "k_dpm_2_a")  # midpoint sigmas in sigmas_interpol
ALPHA_SAMPLERS = ("ddim", "plms")  # no sigmas: add_noise with alphas_cumprod
# use_karras_sigmas and use_exponential_sigmas
KARRAS_OPTION = {"k_lms", "k_euler", "k_heun", "k_dpm_2", "k_dpm_2_a", "k_dpmpp_2m",
                 "k_dpmpp_2m_sde", "k_dpmpp_sde", "k_dpmpp_2s_a", "k_dpmpp_3m_sde", "unipc",
                 "deis"}
# VP sigma schedules: unscaled input, img2img/inpainting through add_noise at begin/step_index
VP_SIGMAS = ("k_dpmpp_2m", "k_dpmpp_2m_sde", "k_dpmpp_2s_a", "k_dpmpp_3m_sde", "unipc", "deis")


def contract(ok: bool, what: str) -> None:
    """Fail with the name of the diffusers behaviour that changed."""
    if not ok:
        pytest.fail(f"diffusers changed {what}", pytrace=False)


def _schedule(sampler: str, **options: object) -> Schedule:
    scheduler, name = make_scheduler(sampler, tiny_model().scheduler_config, **options)
    return Schedule.full(scheduler, sampler, STEPS, schedule=name)


def _sigma_of_scaled_input(schedule: Schedule, t: torch.Tensor) -> float:
    """The sigma ``scale_model_input`` divided by (it returns x / sqrt(sigma**2 + 1))."""
    scaled = float(schedule.scale_input(torch.ones(SHAPE), t).flatten()[0])
    return (1 / scaled**2 - 1) ** 0.5


def _run_calls(schedule: Schedule) -> list[tuple[float | None, float | None, bool]]:
    """For each call of a full run with a zero model output: (sigma scale_model_input used,
    Schedule.input_sigma(), Schedule.finishes_step() after the call)."""
    x = schedule.pure_noise(torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)))
    generator = torch.Generator().manual_seed(1)
    seen = []
    for call, t in enumerate(schedule.timesteps):
        used = _sigma_of_scaled_input(schedule, t) if schedule.uses_sigmas else None
        ours = schedule.input_sigma()
        x = schedule.step(torch.zeros(SHAPE), t, x, call, generator)
        seen.append((used, None if ours is None else float(ours), schedule.finishes_step()))
    return seen


# ------------------------------------------------------------------------------ every scheduler


@pytest.mark.parametrize("sampler", sampler_table.NAMES)
def test_every_scheduler_takes_the_config_we_give_it(sampler: str) -> None:
    cls = SCHEDULERS[sampler]
    contract(cls.__name__ == sampler_table.spec(sampler).scheduler,
             f"the class behind {sampler}")
    scheduler, _ = make_scheduler(sampler, tiny_model().scheduler_config,
                                  prediction_type="v_prediction")
    contract(scheduler.config.prediction_type == "v_prediction",
             f"{cls.__name__}'s prediction_type config (v-prediction models)")
    contract("return_dict" in inspect.signature(cls.step).parameters,
             f"{cls.__name__}.step(return_dict=...)")
    contract(hasattr(scheduler, "init_noise_sigma"), f"{cls.__name__}.init_noise_sigma")
    takes_generator = "generator" in inspect.signature(cls.step).parameters
    seeded_tree = cls is DPMSolverSDEScheduler  # its noise: a Brownian tree (see below)
    contract((takes_generator or seeded_tree) >= sampler_table.spec(sampler).stochastic,
             f"{cls.__name__}.step(generator=...) (ancestral noise from the request's seed)")


@pytest.mark.parametrize("option", ["use_karras_sigmas", "use_exponential_sigmas"])
def test_which_schedulers_take_karras_sigmas(option: str) -> None:
    has_option = {name for name, cls in SCHEDULERS.items()
                  if option in inspect.signature(cls.__init__).parameters}
    contract(has_option == KARRAS_OPTION,
             f"which schedulers take {option}: {sorted(has_option)} (Euler a borrows "
             "Euler's sigmas because it has none)")


# ------------------------------------------------------------------------------ k samplers


@pytest.mark.parametrize("sampler", sorted(SIGMA_SAMPLERS))
def test_k_sampler_sigma_bookkeeping(sampler: str) -> None:
    """step_index, sigmas and order: what input_sigma, start_sigma and slicing read."""
    schedule = _schedule(sampler)
    scheduler = schedule.scheduler
    name = type(scheduler).__name__
    contract(getattr(scheduler, "step_index", "missing") is None,
             f"{name}.step_index (None before the first call)")
    order = int(getattr(scheduler, "order", 0))
    contract(order == (2 if sampler in TWO_CALL else 1), f"{name}.order")
    contract(len(scheduler.timesteps) == STEPS * order - (order - 1),
             f"{name}'s timesteps per sampling step ({len(scheduler.timesteps)} for {STEPS})")
    contract(hasattr(scheduler, "set_begin_index"), f"{name}.set_begin_index (img2img slices)")
    for step in range(STEPS):
        fresh = _schedule(sampler)
        fresh.scheduler.set_begin_index(step * order)
        used = _sigma_of_scaled_input(fresh, fresh.scheduler.timesteps[step * order])
        expected = float(fresh.scheduler.sigmas[step * order])
        contract(abs(used - expected) < 1e-4 * max(1.0, expected),
                 f"where sampling step {step} starts in {name}.sigmas (sigmas[step * order]): "
                 f"scale_model_input used {used:.5f}, sigmas has {expected:.5f}")


@pytest.mark.parametrize("schedule", ["model", "karras", "exponential"])
@pytest.mark.parametrize("sampler", sorted(SIGMA_SAMPLERS))
def test_input_sigma_is_the_sigma_scale_model_input_uses(sampler: str, schedule: str) -> None:
    """At every call, also inside Heun's and DPM2's second call (DPM2: sigmas_interpol, the
    ancestral one indexed one behind; DPM++ SDE: mid_point_sigma), and with borrowed Karras or
    exponential sigmas (Euler a)."""
    calls = _run_calls(_schedule(sampler, schedule=schedule))
    for call, (used, ours, _finished) in enumerate(calls):
        contract(ours is not None and used is not None and abs(used - ours) < 1e-3 * max(1, used),
                 f"the sigma {sampler}'s scale_model_input uses at call {call}: {used}, "
                 f"input_sigma() says {ours}")


# ------------------------------------------------------------------------------ two-call samplers


@pytest.mark.parametrize("sampler", TWO_CALL)
def test_two_call_samplers_say_when_a_step_is_done(sampler: str) -> None:
    schedule = _schedule(sampler)
    contract(schedule.scheduler.state_in_first_order is True,
             f"{type(schedule.scheduler).__name__}.state_in_first_order (True before a step)")
    finished = [done for _used, _ours, done in _run_calls(schedule)]
    # the last call is a lone Euler step; the loop ends the step there whatever this says
    contract(finished[:-1] == [False, True] * (STEPS - 1),
             f"{type(schedule.scheduler).__name__}.state_in_first_order over a run: {finished}")


@pytest.mark.parametrize("sampler", DPM2)
def test_dpm2_keeps_its_midpoints_in_sigmas_interpol(sampler: str) -> None:
    scheduler = _schedule(sampler).scheduler
    interpolated = getattr(scheduler, "sigmas_interpol", None)
    contract(isinstance(interpolated, torch.Tensor)
             and len(interpolated) == len(scheduler.sigmas),
             f"{type(scheduler).__name__}.sigmas_interpol (DPM2's midpoint sigmas)")


# ------------------------------------------------------------------------------ PLMS


def test_plms_timestep_layout_and_counter() -> None:
    """skip_prk_steps: [T0, T1, T1, T2, ...]; the first step is a predictor call (counter 1
    after it) and a corrector call; _plms_slice rebuilds img2img runs in the same layout."""
    schedule = _schedule("plms")
    timesteps = schedule.scheduler.timesteps
    contract(len(timesteps) == STEPS + 1 and timesteps[1] == timesteps[2]
             and bool((timesteps[2:].diff() < 0).all()) and timesteps[0] > timesteps[1],
             f"PNDMScheduler's skip_prk_steps timesteps: {timesteps.tolist()}")
    counters = []
    x = torch.ones(SHAPE)
    for call, t in enumerate(timesteps):
        x = schedule.step(torch.zeros(SHAPE), t, x, call)
        counters.append(int(schedule.scheduler.counter))
    contract(counters == list(range(1, STEPS + 2)), f"PNDMScheduler.counter: {counters}")


def test_plms_alone_is_not_told_v() -> None:
    """PLMS hands PNDM noise (see core/schedule.py); the others read v themselves."""
    scheduler, _ = make_scheduler("plms", tiny_model().scheduler_config,
                                  prediction_type="v_prediction")
    schedule = Schedule.full(scheduler, "plms", STEPS)
    contract(scheduler.config.prediction_type == "epsilon" and schedule.noise_from_v
             and schedule.prediction_type == "v_prediction",
             "register_to_config (PLMS runs as an epsilon scheduler for v models)")


# ------------------------------------------------------------------------------ LMS


def test_lms_takes_its_order_per_step() -> None:
    contract("order" in inspect.signature(LMSDiscreteScheduler.step).parameters,
             "LMSDiscreteScheduler.step(order=...) (k_lms ramps its order from the first step)")
    scheduler = _schedule("k_lms").scheduler
    contract(isinstance(getattr(scheduler, "derivatives", None), list),
             "LMSDiscreteScheduler.derivatives")


# ------------------------------------------------------------------------------ Euler a


def test_euler_ancestral_steps_with_the_sigmas_it_is_given() -> None:
    """Karras for Euler a replaces its sigmas and timesteps; its step must read only those:
    x + eps * (sigma_down - sigma) + noise * sigma_up."""
    schedule = _schedule("k_euler_a", karras=True)
    scheduler = schedule.scheduler
    contract(isinstance(scheduler, EulerAncestralDiscreteScheduler), "the k_euler_a class")
    sigma, following = float(scheduler.sigmas[0]), float(scheduler.sigmas[1])
    up = (following**2 * (sigma**2 - following**2) / sigma**2) ** 0.5
    down = (following**2 - up**2) ** 0.5
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    eps = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    t = scheduler.timesteps[0]
    schedule.scale_input(x, t)
    out = schedule.step(eps, t, x, 0, torch.Generator().manual_seed(4))
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(4))
    expected = x + eps * (down - sigma) + noise * up
    contract(torch.allclose(out, expected, atol=1e-5),
             "EulerAncestralDiscreteScheduler.step's use of sigmas (borrowed Karras sigmas)")


# ------------------------------------------------------------------------------ DDIM / PLMS


@pytest.mark.parametrize("sampler", ALPHA_SAMPLERS)
def test_alpha_samplers_add_noise_with_alphas_cumprod(sampler: str) -> None:
    scheduler = _schedule(sampler).scheduler
    z0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(6))
    t = scheduler.timesteps[1:2]
    alpha = scheduler.alphas_cumprod[int(t)]
    contract(torch.allclose(scheduler.add_noise(z0, noise, t),
                            alpha**0.5 * z0 + (1 - alpha) ** 0.5 * noise, atol=1e-6),
             f"{type(scheduler).__name__}.add_noise / alphas_cumprod")
    contract(hasattr(scheduler, "final_alpha_cumprod"),
             f"{type(scheduler).__name__}.final_alpha_cumprod")


def test_pndm_is_the_plms_class() -> None:
    contract(SCHEDULERS["plms"] is PNDMScheduler, "the plms class")


# ------------------------------------------------------------------------------ DPM++ SDE


def test_dpmpp_sde_brownian_tree_is_seeded_from_the_generator() -> None:
    """noise_sampler (None until the first step) is built from noise_sampler_seed: the same
    seed gives the same steps, another seed other ones; Schedule.step sets the seed."""
    def run(seed: int) -> torch.Tensor:
        schedule = _schedule("k_dpmpp_sde")
        contract(getattr(schedule.scheduler, "noise_sampler", "missing") is None,
                 "DPMSolverSDEScheduler.noise_sampler (None before the first step)")
        x = schedule.pure_noise(torch.ones(SHAPE))
        generator = torch.Generator().manual_seed(seed)
        for call, t in enumerate(schedule.timesteps[:3]):
            schedule.scale_input(x, t)
            x = schedule.step(torch.zeros(SHAPE), t, x, call, generator)
        contract(schedule.scheduler.noise_sampler_seed
                 == brownian_seed(torch.Generator().manual_seed(seed)),
                 "DPMSolverSDEScheduler.noise_sampler_seed")
        return x

    contract(torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2)),
             "DPMSolverSDEScheduler's Brownian tree from noise_sampler_seed")


def test_dpmpp_sde_second_call_scales_by_mid_point_sigma() -> None:
    schedule = _schedule("k_dpmpp_sde")
    x = schedule.pure_noise(torch.ones(SHAPE))
    t0, t1 = schedule.timesteps[0], schedule.timesteps[1]
    schedule.scale_input(x, t0)
    x = schedule.step(torch.zeros(SHAPE), t0, x, 0, torch.Generator().manual_seed(0))
    contract(not schedule.scheduler.state_in_first_order
             and hasattr(schedule.scheduler, "mid_point_sigma"),
             "DPMSolverSDEScheduler.mid_point_sigma / state_in_first_order")
    used = _sigma_of_scaled_input(schedule, t1)
    contract(abs(used - float(schedule.scheduler.mid_point_sigma)) < 1e-4 * max(1.0, used),
             "DPMSolverSDEScheduler.scale_model_input's sigma in its second call")


# ------------------------------------------------------------------------------ VP sigma schedules


@pytest.mark.parametrize("schedule_type", ["model", "karras"])
@pytest.mark.parametrize("sampler", VP_SIGMAS)
def test_vp_schedulers_add_noise_at_begin_and_step_index(sampler: str, schedule_type: str) -> None:
    """Unscaled input, init_noise_sigma 1, and add_noise = alpha_t z0 + sigma_t noise with
    sigma = sigmas[begin_index] before the first step and sigmas[step_index] after a step
    (alpha_t = 1 / sqrt(sigma**2 + 1), sigma_t = sigma * alpha_t)."""
    schedule = _schedule(sampler, schedule=schedule_type).sliced(STEPS - 2)
    scheduler = schedule.scheduler
    name = type(scheduler).__name__
    z0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(6))

    def expected(index: int) -> torch.Tensor:
        sigma = float(scheduler.sigmas[index])
        alpha = 1 / (sigma**2 + 1) ** 0.5
        return alpha * z0 + sigma * alpha * noise

    contract(float(scheduler.init_noise_sigma) == 1.0, f"{name}.init_noise_sigma")
    x = schedule.noise_init(z0, noise)
    contract(torch.allclose(x, expected(2), atol=1e-5), f"{name}.add_noise at begin_index")
    contract(torch.equal(schedule.scale_input(x, schedule.timesteps[0]), x),
             f"{name}.scale_model_input (unscaled)")
    x = schedule.step(torch.zeros(SHAPE), schedule.timesteps[0], x, 0,
                      torch.Generator().manual_seed(0))
    contract(int(scheduler.step_index) == 3, f"{name}.step_index after a step")
    contract(torch.allclose(schedule.noised_for_next_call(z0, noise, 0), expected(3), atol=1e-5),
             f"{name}.add_noise at step_index (inpainting)")


@pytest.mark.parametrize("sampler", ["k_dpmpp_2m", "unipc", "deis"])
def test_vp_inpainting_levels_by_position_where_timesteps_repeat(sampler: str) -> None:
    """Exponential sigmas at 20 steps repeat a timestep; the kept region must still be noised
    to the sigma of the next call (by position: Schedule.full sets begin_index 0), not to the
    first sigma with that timestep."""
    steps = 20
    scheduler, name = make_scheduler(sampler, tiny_model().scheduler_config,
                                     schedule="exponential")
    schedule = Schedule.full(scheduler, sampler, steps, schedule=name)
    timesteps = schedule.timesteps.tolist()
    contract(len(set(timesteps)) < len(timesteps),
             f"{type(scheduler).__name__}'s exponential timesteps (no repeat to test with)")
    z0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(6))
    x = schedule.pure_noise(noise)
    for call, t in enumerate(schedule.timesteps[:-1]):
        x = schedule.step(torch.zeros(SHAPE), t, x, call)
        sigma = float(scheduler.sigmas[call + 1])
        alpha = 1 / (sigma**2 + 1) ** 0.5
        contract(torch.allclose(schedule.noised_for_next_call(z0, noise, call),
                                alpha * z0 + sigma * alpha * noise, atol=1e-5),
                 f"{type(scheduler).__name__}.add_noise after call {call} (t={int(t)})")
