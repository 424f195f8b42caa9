"""The launch side of a batch run: check --resume / --each_image / --ray, and wrap the lines.

cli.py calls ``plan_batch`` right after parsing (a bad option is one line and status 2, before
any model loads) and ``start_lines`` when the file is open.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dreamline.errors import DreamlineError


RAY_CPUS_MIN = 0.01  # a hundredth of a core: less is no share of a machine worth a worker


@dataclass(frozen=True)
class BatchPlan:
    """What the launch options ask of a --from_file run."""

    source: str | None  # the --from_file argument (None: no file run)
    resume: bool = False
    images: tuple[Path, ...] = ()  # --each_image: the folder's images, in order
    ray: str | None = None  # --ray: "" = a local Ray, "auto" or "ray://host:port"
    ray_workers: int | None = None
    ray_cpus: float = 1.0
    notes: list[str] = field(default_factory=list)


def plan_batch(args: Any) -> BatchPlan:
    """The batch options of parsed launch ``args``; DreamlineError (one line) when they need
    --from_file, name a folder without images, or ask for Ray when it is not installed."""
    source = args.from_file
    wanted = [name for name, given in (("--resume", args.resume),
                                       ("--each_image", args.each_image is not None),
                                       ("--ray", args.ray is not None)) if given]
    if source is None:
        if wanted:
            raise DreamlineError(f"{wanted[0]}: needs --from_file FILE (the lines to run)")
        return BatchPlan(None)
    images: tuple[Path, ...] = ()
    if args.each_image is not None:
        from dreamline.batch.folder import list_images

        images = tuple(list_images(Path(args.each_image).expanduser()))
    if args.ray is not None:
        from dreamline.batch.ray_support import require_ray

        require_ray()
        if args.ray_workers is not None and args.ray_workers < 1:
            raise DreamlineError(f"--ray_workers: {args.ray_workers} is too few; expected 1 "
                                 f"or more")
        if not args.ray_cpus >= RAY_CPUS_MIN:  # Ray itself counts in steps of 0.0001
            raise DreamlineError(f"--ray_cpus: {args.ray_cpus:g} is too small; expected CPU "
                                 f"cores per worker, {RAY_CPUS_MIN:g} or more (e.g. 0.5, 2)")
    return BatchPlan(source, resume=args.resume, images=images, ray=args.ray,
                     ray_workers=args.ray_workers, ray_cpus=args.ray_cpus)


def start_lines(plan: BatchPlan, session: Any, runner: Any,
                lines: Iterable[Any]) -> Iterator[Any]:
    """Set the session's manifest hooks (resuming if asked) and expand --each_image; the
    SourceLines to run."""
    from dreamline.batch.manifest import Manifest, source_key
    from dreamline.batch.resume import ManifestHooks

    if plan.source is None:
        return iter(lines)
    key = source_key(plan.source)
    outdir = session.settings.outdir
    manifest = Manifest.resume(outdir, key) if plan.resume else Manifest(outdir, key)
    for problem in manifest.problems:
        session.error(f"warning: {problem}")
    if plan.resume and not manifest.done:
        session.say(f">> --resume: no finished line of {plan.source} recorded in {outdir}; "
                    f"running every line")
    elif plan.resume:
        session.say(f">> --resume: {len(manifest.done)} line(s) of {plan.source} finished "
                    f"before; running the rest")
    session.hooks = ManifestHooks(session, manifest, resume=plan.resume, say=session.say,
                                  error=session.error)
    if not plan.images:
        return iter(lines)
    from dreamline.batch.folder import each_image, tags_for

    runner.name_tags = tags_for(list(plan.images))
    return each_image(lines, list(plan.images))
