"""The guided tour ``layerlab tour`` prints, chapter by chapter.

Each chapter is a function taking a :class:`Tour` (the engine, the output
stream and a few printing helpers) and printing what happens, step by step,
on whichever backend the tour was started with.  Chapters follow the seed
document ("Docker 基础概念"): append new ones to :data:`CHAPTERS`.

Everything here goes through the public engine interface (chapter 3 also
reads a container's mount, to show its writable layer), so the same steps
run on the model and on the kernel; where only one backend can show
something (the model's event trace, the kernel's char 0/0 device on disk)
the chapter says so instead of pretending.  Chapters 2 and 3 build images
and create volumes in a scratch engine of the same backend
(:func:`sim.tour._common.scratch_engine`), never in the state folder ``layerlab`` uses.

One module a chapter (``_layers``, ``_images``, ``_containers``, ``_vms``, ``_registries``, ``_networks``); what
they share (:class:`Tour`, :class:`Chapter`, the scratch engine) is in ``_common``.

Chapter 5, 仓库 (registries), is the seed's third section but comes last: chapters are appended,
never inserted, so the numbers ``--chapter N``, the notebooks and the tests use stay stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from sim.interface import Engine
from sim.tour._common import Chapter, Tour
from sim.tour._containers import chapter_containers
from sim.tour._images import chapter_images
from sim.tour._layers import chapter_layers
from sim.tour._networks import chapter_networks
from sim.tour._registries import chapter_registries
from sim.tour._vms import chapter_vms

__all__ = ["CHAPTERS", "Chapter", "Tour", "run_tour"]

#: The chapters, in the order they were written (the seed's order but for 仓库, appended as chapter 5
#: so that no chapter's number changes).  New chapters are appended here.
CHAPTERS: list[Chapter] = [
    Chapter("分层存储", "Layered storage", chapter_layers),
    Chapter("镜像", "Images", chapter_images),
    Chapter("容器", "Containers, the container layer and volumes", chapter_containers),
    Chapter("容器和虚拟机", "Containers and virtual machines", chapter_vms),
    Chapter("仓库", "Repositories and registries", chapter_registries),
    Chapter("命名空间和网络", "Namespaces and networks", chapter_networks),
]


def run_tour(engine: Engine, backend: str, out: TextIO, chapters: Sequence[int] | None = None) -> None:
    """Print the chapters numbered in ``chapters`` (1-based; all when ``None``)."""
    tour = Tour(engine, backend, out)
    tour.print(f"layerlab tour -- backend {backend!r} ({engine!r})")
    tour.print("学习 Docker 的实际工作原理 / how Docker really works, step by step")
    for number, chapter in enumerate(CHAPTERS, start=1):
        if chapters is not None and number not in chapters:
            continue
        tour.chapter(number, chapter.zh, chapter.en)
        chapter.run(tour)
    tour.print()
