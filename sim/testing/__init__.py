"""Property-based testing of layer semantics: hypothesis strategies, a two-backend state machine,
a pytest fixture with both backends, and the snapshots that say what "agree" means.

``import sim`` never imports this package, and ``import sim.testing`` imports neither hypothesis nor
pytest: each name loads its module on first use.  The strategies and :class:`DifferentialMachine`
need hypothesis, :func:`both_backends` and :func:`connect_or_skip` need pytest
(``pip install 'layerlab[testing]'`` installs both); the snapshots (:func:`outcome`, :func:`tree`,
:func:`stat_view`, :func:`layer_view`) need neither.  Using a name whose library is missing raises
``ModuleNotFoundError`` naming that extra.

Strategies (each returns a hypothesis ``SearchStrategy``):

=========================  =====================================================================
``names``                  one path component from a small alphabet (:data:`NAMES`)
``layer_paths``            relative paths inside a layer, ``"a/b"``
``mount_paths``            absolute paths as a process passes them, with odd spellings
``symlink_targets``        absolute, relative, dotted and escaping targets
``xattr_dicts``            ``user.*`` extended attributes
``mtimes_ns``              nanosecond mtimes, pre-1970 included
``file_trees``             frozen layers without whiteouts or opaque directories
``layers``                 frozen layers with files, dirs, symlinks, hard links, whiteouts, opaque dirs
``layer_stacks``           lists of layers, bottom first, whose paths collide
``mountable_layers``       layers both backends mount and compare exactly
``operations``             one :class:`Operation` (``os``-shaped call) on a file system
``operation_sequences``    lists of operations
``open_flags``             ``os.open`` flag sets
=========================  =====================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.testing._backends import both_backends, connect_or_skip
    from sim.testing._machine import DifferentialMachine
    from sim.testing._snapshots import Outcome, layer_view, outcome, stat_view, tree
    from sim.testing._strategies import (
        NAMES,
        ODD_NAMES,
        ODD_PATHS,
        OPERATION_NAMES,
        PAST_MTIMES_NS,
        Operation,
        file_trees,
        layer_paths,
        layer_stacks,
        layers,
        mount_paths,
        mountable_layers,
        mtimes_ns,
        names,
        open_flags,
        operation_sequences,
        operations,
        symlink_targets,
        xattr_dicts,
    )

__all__ = [
    "NAMES", "ODD_NAMES", "ODD_PATHS", "PAST_MTIMES_NS", "OPERATION_NAMES",
    "names", "layer_paths", "mount_paths", "symlink_targets", "xattr_dicts", "mtimes_ns",
    "file_trees", "layers", "layer_stacks", "mountable_layers",
    "Operation", "operations", "operation_sequences", "open_flags",
    "DifferentialMachine",
    "both_backends", "connect_or_skip",
    "Outcome", "outcome", "tree", "stat_view", "layer_view",
]

# name -> the private module that defines it; read by __getattr__ only (never written).
_HOMES: dict[str, str] = {
    **dict.fromkeys(["both_backends", "connect_or_skip"], "_backends"),
    "DifferentialMachine": "_machine",
    **dict.fromkeys(["Outcome", "outcome", "tree", "stat_view", "layer_view"], "_snapshots"),
}
_EXTRA = {"hypothesis": "hypothesis", "pytest": "pytest"}


def __getattr__(name: str) -> Any:
    # Lazy, so that the snapshots work, and the package imports, where hypothesis or pytest is missing.
    if name not in __all__:
        raise AttributeError(f"module 'sim.testing' has no attribute {name!r}")
    home = _HOMES.get(name, "_strategies")
    try:
        module = importlib.import_module(f"sim.testing.{home}")
    except ModuleNotFoundError as exc:
        if exc.name in _EXTRA:
            raise ModuleNotFoundError(
                f"sim.testing.{name} needs {exc.name}: pip install 'layerlab[testing]'", name=exc.name
            ) from exc
        raise
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
