"""The stages of a multi-stage Buildfile (多阶段构建): which FROM starts each one, what each stage uses
(an earlier stage as its base or as a ``COPY --from`` source) and which stages a target needs.

Everything here reads the parsed text only; the builder (:mod:`sim.containers._build`) does the work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sim.errors import BuildfileError
from sim.images._records import Buildfile, Instruction


@dataclass(frozen=True)
class Stage:
    """One build stage: its FROM and the instructions up to the next FROM.

    ``index`` counts stages from 0 (``COPY --from=0``); ``name`` is the ``AS`` name, lower-cased, or
    None; ``first`` is the position of the FROM in ``Buildfile.instructions`` (0-based), so the
    build step of ``instructions[k]`` is numbered ``first + k + 1``.
    """

    index: int
    name: str | None
    first: int
    instructions: tuple[Instruction, ...]

    @property
    def from_ins(self) -> Instruction:
        """The FROM that starts this stage."""
        return self.instructions[0]

    @property
    def label(self) -> str:
        """How messages name the stage: its name, else its index."""
        return self.name if self.name is not None else str(self.index)


@dataclass(frozen=True)
class StageRef:
    """What a ``FROM`` image or a ``COPY --from`` value names: a stage (``stage`` set) or an image."""

    stage: int | None
    image: str | None


def split_stages(bf: Buildfile) -> tuple[Stage, ...]:
    """The stages of ``bf``, in order; the ARGs before the first FROM belong to none.

    Raises BuildfileError at the second FROM when two stages share a name (as Docker:
    ``duplicate stage name``), and for a literal ``COPY --from`` (one without ``$``) that names
    this stage or a later one, or a stage index the file does not have.
    """
    starts = [i for i, ins in enumerate(bf.instructions) if ins.kind == "FROM"]
    stages: list[Stage] = []
    seen: dict[str, Instruction] = {}
    for index, first in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(bf.instructions)
        from_ins = bf.instructions[first]
        name = from_ins.stage
        if name is not None:
            if name in seen:
                raise bf.error(from_ins, f'duplicate stage name "{name}": line {seen[name].line} already names a stage so')
            seen[name] = from_ins
        stages.append(Stage(index, name, first, bf.instructions[first:end]))
    out = tuple(stages)
    for stage in out:
        for ins in stage.instructions:
            value = copy_from(ins)
            if value is not None and "$" not in value:
                resolve_copy_from(bf, out, stage, ins, value)
    return out


def copy_from(ins: Instruction) -> str | None:
    """The ``--from`` value of a COPY as written, or None (not a COPY, or no ``--from``)."""
    return ins.flags.get("from") if ins.kind == "COPY" else None


def resolve_copy_from(bf: Buildfile, stages: tuple[Stage, ...], stage: Stage, ins: Instruction,
                      value: str) -> StageRef:
    """What ``COPY --from=value`` (already substituted) in ``stage`` names.

    A number is a stage index; a stage name is that stage (names compare lower-cased, as Docker's
    do); anything else is an image reference, looked up locally by the builder.  A stage must be
    an earlier one: this stage or a later one is a BuildfileError at ``ins``'s line, as is an index
    the file does not have.
    """
    if value.isdigit():
        index = int(value)
        if index >= len(stages):
            raise bf.error(ins, f"COPY --from={value}: unknown stage {index}: the Buildfile has "
                                f"{len(stages)} stage{'s' if len(stages) != 1 else ''} (0 to {len(stages) - 1})")
        _check_earlier(bf, stages, stage, ins, index, value)
        return StageRef(index, None)
    for other in stages:
        if other.name is not None and other.name == value.lower():
            _check_earlier(bf, stages, stage, ins, other.index, value)
            return StageRef(other.index, None)
    return StageRef(None, value)


def _check_earlier(bf: Buildfile, stages: tuple[Stage, ...], stage: Stage, ins: Instruction, index: int,
                   value: str) -> None:
    if index == stage.index:
        raise bf.error(ins, f"COPY --from={value} names the stage it is in: a stage can only copy from earlier stages")
    if index > stage.index:
        raise bf.error(ins, f"COPY --from={value} names stage {stages[index].label} (line "
                            f"{stages[index].from_ins.line}), which comes later: a stage can only copy from earlier stages")


def resolve_base(stages: tuple[Stage, ...], stage: Stage, image: str) -> StageRef:
    """What ``FROM image`` (substituted) of ``stage`` names: an earlier stage's name is that stage,
    anything else an image (Docker's rule: only earlier stages are visible to FROM)."""
    for other in stages[: stage.index]:
        if other.name is not None and other.name == image.lower():
            return StageRef(other.index, None)
    return StageRef(None, image)


def find_target(bf: Buildfile, stages: tuple[Stage, ...], target: str | None) -> Stage:
    """The stage ``--target`` names (by name, lower-cased), or the last stage when ``target`` is None.

    An unknown name is a BuildfileError that lists the stage names there are.
    """
    if target is None:
        return stages[-1]
    for stage in stages:
        if stage.name is not None and stage.name == target.lower():
            return stage
    names = ", ".join(f"{s.name} (line {s.from_ins.line})" for s in stages if s.name is not None)
    raise BuildfileError(f'target stage "{target}" could not be found: '
                         + (f"the stages are {names}" if names else "no stage has a name (FROM image AS name)"),
                         filename=bf.filename)


def needed_stages(target: Stage, uses: Mapping[int, frozenset[int]]) -> frozenset[int]:
    """The indexes of ``target`` and every stage it needs, directly or through other stages.

    ``uses[i]`` holds the earlier stages stage ``i`` uses (its base and its ``COPY --from`` sources).
    """
    need = {target.index}
    todo = [target.index]
    while todo:
        for dep in uses.get(todo.pop(), frozenset()):
            if dep not in need:
                need.add(dep)
                todo.append(dep)
    return frozenset(need)
