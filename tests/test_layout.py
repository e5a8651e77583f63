"""The layout shows the architecture (docs/architecture.md): one package a chapter or concern, no
import circles, no giant modules, and a pinned public surface for every public package.

The import graph is read from the source with ``ast``, every ``import`` counted wherever it stands
(a function-level import or one under ``TYPE_CHECKING`` hides a circle; it does not remove it).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sim", "realrt")
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports: ``from a.b import c`` is ``a.b.c`` when that is a
    module, else ``a.b``."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in known and t != module}


def import_graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for target in _imported(module, path, set(modules)):
            # A package's __init__ re-exports what lies below it: that arrow runs down, not up.
            if module.startswith(target + ".") and modules[target].name == "__init__.py":
                continue
            graph.add_edge(module, target)
    return graph


def test_no_import_circles() -> None:
    graph = import_graph()
    # A package importing its own sub-modules is the re-export, not a circle: drop those arrows.
    down = [(a, b) for a, b in graph.edges if b.startswith(a + ".")]
    graph.remove_edges_from(down)
    circles = sorted(sorted(c) for c in nx.simple_cycles(graph))
    assert circles == [], f"import circles: {circles}"


def test_graph_sees_the_imports() -> None:
    """The reader above can fail: it must see the arrows the code certainly has."""
    graph = import_graph()
    assert graph.has_edge("sim.containers.core", "sim.images.store")
    assert graph.has_edge("realrt.engine", "sim.containers.core")
    assert graph.number_of_edges() > 150


def test_no_module_over_the_limit() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in _modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_sim_never_imports_realrt() -> None:
    graph = import_graph()
    assert [(a, b) for a, b in graph.edges if a.startswith("sim") and b.startswith("realrt")] == []


#: Each public package's ``__all__``: adding a name is a decision, not an accident.
PUBLIC: dict[str, list[str]] = {
    "sim.layers": ["Layer", "Entry", "RegularFile", "Directory", "Symlink", "Whiteout", "source_date_epoch",
                   "UnionFS", "MAXSYMLINKS", "Change", "ChangeKind", "upper_changes", "Event", "EventKind",
                   "Fifo", "Device", "CharDevice", "BlockDevice"],
    "sim.images": ["ContentStore", "BlobNotFoundError", "ImageStore", "ImageRecord", "Descriptor", "ImageConfig",
                   "Manifest", "Index", "Reference", "parse_reference", "Buildfile", "Instruction",
                   "parse_buildfile", "ImageAnalysis", "analyze", "busybox_layer"],
    "sim.containers": ["EngineCore", "Container", "ProcessSpec", "Limits", "parse_limits", "MountedFS", "HostDirFS"],
    "sim.containers.shell": ["run", "ShellResult", "DEFAULT_PATH", "ASH_DEFAULT_PATH", "FAKE_PID", "IMPLEMENTED",
                             "BUSYBOX_APPLETS"],
    "sim.cli": ["main", "build_parser"],
    "sim.exercises": ["ExerciseSet", "EXERCISE_SETS", "exercise_set", "instructor_notebook", "student_notebook",
                      "graded_cells", "check_notebook", "CheckResult", "NotebookReport", "NOT_ANSWERED",
                      "backend_name", "scratch_engine", "merged_listing", "check_listing", "visible_bytes",
                      "check_sizes", "check_layer_effect", "container_layer", "check_container_layer", "KINDS",
                      "layer_count", "check_layer_count", "cached_steps", "check_cached_steps", "check_history",
                      "check_smaller_image", "stored_layers", "check_stored_layers",
                      "check_property", "Mutant", "check_union_property", "check_build_property", "Built",
                      "check_copy_up_property", "check_registry_property",
                      "container_diff", "check_diff", "Handoff", "check_handoff", "committed_paths",
                      "check_committed", "check_exit",
                      "reference_parts", "check_reference_parts", "layer_uploads", "check_uploads", "tag_targets",
                      "check_tag_targets", "mirror_traffic", "check_mirror_traffic", "TRAFFIC",
                      "check_density", "held_memory", "check_held_memory", "hog_outcome", "check_hog_outcome",
                      "check_start_order", "check_fleet_fit", "PLACEMENT_MUTANTS", "check_placement_property",
                      "NAMESPACE_KINDS_ASKED", "namespaces_shared", "check_namespaces", "check_uid_map",
                      "reachability", "check_reachability", "addresses", "check_addresses", "check_publish",
                      "IPAM_MUTANTS", "check_ipam_property"],
    "sim.network": ["NetworkModel", "NetworkInfo", "Endpoint", "Interface", "Route", "PortMapping", "parse_publish",
                    "Subnet", "parse_subnet", "default_subnet", "bridge_name", "veth_names", "netns_name",
                    "interface_name", "NamespaceSet", "HOST_NAMESPACES", "NamespaceAllocator", "ProcessView",
                    "IdMap", "parse_id_map", "format_id_map", "rootless_maps", "to_host", "to_container"],
    "sim.registries": ["RegistryClient", "BlobReader", "ManifestResponse", "ModelRegistry", "ModelMirror",
                       "RegistryStats", "Repository", "Credentials", "CredentialStore", "push", "pull",
                       "PushResult", "PullResult", "BlobTransfer"],
    "sim.tour": ["CHAPTERS", "Chapter", "Tour", "run_tour"],
    "sim.testing": ["NAMES", "ODD_NAMES", "ODD_PATHS", "PAST_MTIMES_NS", "OPERATION_NAMES", "names", "layer_paths",
                    "mount_paths", "symlink_targets", "xattr_dicts", "mtimes_ns", "file_trees", "layers",
                    "layer_stacks", "mountable_layers", "Operation", "operations", "operation_sequences",
                    "open_flags", "DifferentialMachine", "both_backends", "connect_or_skip", "Outcome", "outcome",
                    "tree", "stat_view", "layer_view"],
    "realrt.network": ["KernelNetworks", "netns_path", "require_net_admin", "publish", "unpublish", "Published",
                       "reachable", "listen", "Listener", "PROBE_PORT"],
    "realrt.registries": ["RegistryServer", "CertificateAuthority", "HttpRegistry", "serve"],
    "realrt.layers": ["KernelUnionFS", "overlay_settings", "legacy_options"],
    "realrt.containers": ["ContainerSpec", "BindMount", "Process", "start", "run", "exec", "start_on", "run_on",
                          "Cgroup", "Usage"],
    "realrt.vm": ["VM", "Kernel", "BootTimeoutError", "boot_and_measure", "measure_container_start", "fetch_kernel",
                  "find_kernel", "default_cache_dir", "kvm_usable", "vm_init_script", "MARKER", "MARKER_SCRIPT",
                  "MIN_MEMORY_MIB", "CLOUD_KERNEL_PACKAGE"],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.{name}"


def test_every_package_is_pinned() -> None:
    packages = {m for m, p in _modules().items() if p.name == "__init__.py" and "._" not in m}
    # sim, realrt and sim.capacity are pinned in test_public_api.py.
    assert packages - {"sim", "realrt", "sim.capacity"} == set(PUBLIC)
