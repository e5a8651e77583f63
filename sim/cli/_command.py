"""How a docker-like subcommand is declared: ``--backend`` on each, and a handler that gets an engine."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["Handler", "Wrap", "command_factory"]

Handler = Callable[[argparse.Namespace, Any], int]
Wrap = Callable[[Handler], Callable[[argparse.Namespace], int]]


def command_factory(sub: Any, wrap: Wrap) -> Callable[..., argparse.ArgumentParser]:
    """``command(name, handler, help, json_flag=False)``: a subcommand with ``--backend`` whose handler gets an engine."""

    def command(name: str, handler: Handler, help: str, *, json_flag: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
        p.add_argument("--backend", default=None, metavar="{real,sim}", help="which engine (default: $LAYERLAB_BACKEND, else sim)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON for scripts")
        p.set_defaults(handler=wrap(handler), subparser=p)
        return p

    return command
