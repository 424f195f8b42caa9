"""The Ray worker actors: start them, send lines, rerun a line whose worker died.

A line whose actor dies (killed process, lost node, a CUDA error) is sent again to a fresh actor
in the dead one's place, up to ``MAX_RERUNS`` times; a line that fails for its own reasons comes
back as its DreamlineError and is never rerun.  The pool counts lines, images and busy seconds
per worker slot on the driver, so a replaced worker's share is still in the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dreamline.batch.worker import LineWorker, ModelInfo, Outcome
from dreamline.errors import DreamlineError, ModelError
from dreamline.request import Request

MAX_RERUNS = 3
_CUDA_FAULT = "CUDA error"


class WorkerLost(DreamlineError):
    """A line's workers died ``MAX_RERUNS`` + 1 times in a row; the message names the line."""


@dataclass
class Slot:
    """One worker place: its current actor and what it did (across replacements)."""

    index: int
    actor: Any
    where: str = "?"
    in_flight: int = 0
    lines: int = 0
    images: int = 0
    seconds: float = 0.0
    replaced: int = 0


@dataclass
class Ticket:
    """A line sent to a worker: enough to send it again elsewhere."""

    key: Any
    model: str | None
    request: Request
    init: Any
    slot: Slot
    ref: Any
    reruns: int = 0
    done: bool = field(default=False)


class WorkerPool:
    """``count`` LineWorker actors with the given Ray resource ``options``."""

    def __init__(self, ray: Any, count: int, options: dict[str, Any],
                 worker_args: tuple[Any, ...],
                 on_submit: Callable[[Ticket], None] | None = None) -> None:
        self.ray = ray
        self.actor_class = ray.remote(LineWorker).options(**options)
        self.worker_args = worker_args
        self.on_submit = on_submit
        self.slots = [Slot(index, self._new_actor()) for index in range(1, count + 1)]
        for slot in self.slots:
            slot.where = self._where(slot)
        self.infos: dict[str | None, ModelInfo] = {}

    def _new_actor(self) -> Any:
        return self.actor_class.remote(*self.worker_args)

    def _where(self, slot: Slot) -> str:
        try:
            return str(self.ray.get(slot.actor.where.remote()))
        except self._lost_errors():
            return "?"

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        exceptions = self.ray.exceptions
        names = ("RayActorError", "WorkerCrashedError", "ObjectLostError", "NodeDiedError",
                 "OwnerDiedError", "ActorUnavailableError")
        return tuple(getattr(exceptions, name) for name in names if hasattr(exceptions, name))

    def _replace(self, slot: Slot, actor: Any) -> None:
        """The actor of ``slot`` died (or hit a CUDA error): a fresh one takes its place."""
        if slot.actor is not actor:
            return  # already replaced by another line that saw it die
        self._kill(actor)
        slot.actor = self._new_actor()
        slot.in_flight = 0
        slot.replaced += 1
        slot.where = self._where(slot)

    def model_info(self, name: str | None) -> ModelInfo:
        """Load ``name`` on a worker (None: the default) and describe it; ModelError if it
        cannot be loaded there."""
        if name not in self.infos:
            for _ in range(MAX_RERUNS + 1):
                slot = self.slots[0]
                actor = slot.actor
                try:
                    found = self.ray.get(actor.model_info.remote(name))
                    break
                except self._lost_errors():
                    self._replace(slot, actor)
            else:
                raise WorkerLost(f"the workers died {MAX_RERUNS + 1} times loading the model")
            if isinstance(found, DreamlineError):
                raise found if isinstance(found, ModelError) else ModelError(str(found))
            self.infos[name] = found
        return self.infos[name]

    def submit(self, key: Any, model: str | None, request: Request, init: Any) -> Ticket:
        """Send a line to the least busy worker; its result is read with ``result``."""
        slot = min(self.slots, key=lambda candidate: candidate.in_flight)
        slot.in_flight += 1
        ticket = Ticket(key, model, request, init, slot,
                        slot.actor.generate.remote(model, request, init))
        if self.on_submit is not None:
            self.on_submit(ticket)
        return ticket

    def in_flight(self) -> int:
        return sum(slot.in_flight for slot in self.slots)

    def result(self, ticket: Ticket) -> Outcome:
        """Wait for the line; a dead worker's line is rerun on its replacement."""
        while True:
            slot, actor = ticket.slot, ticket.slot.actor
            try:
                outcome: Outcome = self.ray.get(ticket.ref)
            except self._lost_errors():
                self._lost(ticket, slot, actor)
                continue
            except self.ray.exceptions.RayTaskError as exc:
                if _CUDA_FAULT not in str(exc):
                    slot.in_flight = max(0, slot.in_flight - 1)
                    raise exc.as_instanceof_cause() from None
                self._lost(ticket, slot, actor)
                continue
            slot.in_flight = max(0, slot.in_flight - 1)
            if outcome.error is None:
                slot.lines += 1
                slot.images += len(outcome.images)
                slot.seconds += outcome.seconds
            return outcome

    def _lost(self, ticket: Ticket, slot: Slot, actor: Any) -> None:
        if ticket.reruns >= MAX_RERUNS:
            raise WorkerLost(f"the workers running this line died {ticket.reruns + 1} times; "
                             f"giving up on it")
        self._replace(slot, actor)
        ticket.reruns += 1
        replacement = self.submit(ticket.key, ticket.model, ticket.request, ticket.init)
        ticket.slot, ticket.ref = replacement.slot, replacement.ref

    def summary(self) -> list[str]:
        """One line per worker: where, lines, images, busy time, images per minute."""
        lines = []
        for slot in self.slots:
            rate = f", {slot.images / slot.seconds * 60:.1f} images/min" if slot.seconds else ""
            again = f", replaced {slot.replaced}x" if slot.replaced else ""
            lines.append(f">> worker {slot.index} ({slot.where}): {slot.lines} line(s), "
                         f"{slot.images} image(s), {slot.seconds:.1f}s busy{rate}{again}")
        return lines

    def shutdown(self) -> None:
        for slot in self.slots:
            self._kill(slot.actor)

    def _kill(self, actor: Any) -> None:
        """Stop ``actor``; one that is gone already is fine (the replacement is what counts)."""
        gone: tuple[type[BaseException], ...] = (ValueError, *self._lost_errors())
        try:
            self.ray.kill(actor, no_restart=True)
        except gone:
            return
