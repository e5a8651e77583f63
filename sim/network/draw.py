"""The networks as a graph (networkx) and a figure (matplotlib's object API, never pyplot).

:func:`build_graph` makes one node for the host, each bridge, each veth pair and each
container's network namespace, joined host -- bridge -- veth pair -- namespace; :func:`draw_graph`
lays it out in those four rows and draws it.  Only :meth:`NetworkModel.graph` and
:meth:`NetworkModel.draw` import this module, so ``import sim.network`` needs neither library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import networkx as nx
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.network._records import Endpoint, NetworkInfo
from sim.network.names import netns_name

__all__ = ["build_graph", "draw_graph", "COLOURS", "TITLE"]

#: One colour per kind of node, in every figure.
COLOURS: Final[Mapping[str, str]] = {"host": "#4c72b0", "bridge": "#dd8452", "veth": "#55a868", "netns": "#8172b3"}
_LEGEND = {"host": "host (root namespace)", "bridge": "bridge", "veth": "veth pair", "netns": "container namespace"}
_ROWS = {"host": 3, "bridge": 2, "veth": 1, "netns": 0}
TITLE: Final = "layerlab networks: host, bridges, veth pairs, container namespaces"


def build_graph(networks: Sequence[NetworkInfo], endpoints: Sequence[Endpoint],
                hostnames: Mapping[str, str]) -> nx.Graph:
    """The graph of ``networks`` and ``endpoints``; ``hostnames`` maps every known container id to
    its hostname (a container on no network is a namespace node with no edge).

    Nodes, each with ``kind`` and ``address`` (a CIDR string or ``None``) and a ``label``:
    ``"host"``; each bridge by its name (``network``, ``address`` = the gateway's); each veth
    pair by its host-side name (``network``, ``container``, ``interface``, ``address`` = the
    container's); each namespace by its netns name (``container``, ``hostname``).  Edges:
    host--bridge, bridge--veth (the host side is a port of the bridge), veth--namespace (the other
    side is inside), each with a ``kind`` of ``"owns"``, ``"port"`` or ``"peer"``.  So the graph
    has ``1 + len(networks) + len(endpoints) + len(hostnames)`` nodes and
    ``len(networks) + 2 * len(endpoints)`` edges.
    """
    graph = nx.Graph()
    graph.add_node("host", kind="host", address=None, label="host")
    bridges = {n.name: n.bridge for n in networks}
    for n in networks:
        graph.add_node(n.bridge, kind="bridge", address=f"{n.gateway}/{n.subnet.split('/', 1)[1]}", network=n.name,
                       label=f"{n.name}\n{n.bridge}\n{n.subnet}")
        graph.add_edge("host", n.bridge, kind="owns")
    # Insertion order is the drawing order of each row: veths grouped by network, each namespace
    # under the mean position of its veths, so edges cross as little as they can.
    order = {n.name: i for i, n in enumerate(networks)}
    veths = sorted(endpoints, key=lambda e: order[e.network])
    for e in veths:
        graph.add_node(e.host_veth, kind="veth", address=e.address, network=e.network, container=e.container,
                       interface=e.interface, label=f"{e.host_veth}\n{e.interface} {e.address}")
        graph.add_edge(bridges[e.network], e.host_veth, kind="port")
    spots: dict[str, list[int]] = {cid: [] for cid in hostnames}
    for i, e in enumerate(veths):
        spots[e.container].append(i)
    for cid in sorted(hostnames, key=lambda c: sum(spots[c]) / len(spots[c]) if spots[c] else len(veths)):
        graph.add_node(netns_name(cid), kind="netns", address=None, container=cid, hostname=hostnames[cid],
                       label=f"{hostnames[cid]}\n{netns_name(cid)}")
    for e in veths:
        graph.add_edge(e.host_veth, netns_name(e.container), kind="peer")
    return graph


def _layout(graph: nx.Graph) -> dict[str, tuple[float, float]]:
    """Four rows (host, bridges, veths, namespaces), each spread evenly in its insertion order."""
    rows: dict[int, list[str]] = {}
    for node, kind in graph.nodes(data="kind"):
        rows.setdefault(_ROWS[kind], []).append(node)
    return {node: ((i + 1) / (len(nodes) + 1), float(row)) for row, nodes in rows.items() for i, node in enumerate(nodes)}


def draw_graph(graph: nx.Graph, ax: Axes | None = None) -> Figure:
    """Draw a :func:`build_graph` graph on ``ax`` (a new :class:`~matplotlib.figure.Figure` when
    ``None``), with :data:`TITLE` and a legend of the node kinds; returns the figure."""
    if ax is None:
        widest = max([1] + [sum(1 for _, k in graph.nodes(data="kind") if k == kind) for kind in _ROWS])
        figure = Figure(figsize=(max(6.0, 2.2 * widest), 5.5), layout="constrained")
        ax = figure.add_subplot()
    else:
        parent: Any = ax.get_figure()
        while not isinstance(parent, Figure):  # an axes on a SubFigure: draw into its figure
            parent = parent.get_figure()
        figure = parent
    pos = _layout(graph)
    for a, b in graph.edges:
        ax.plot([pos[a][0], pos[b][0]], [pos[a][1], pos[b][1]], color="#999999", linewidth=1.2, zorder=1)
    for kind, colour in COLOURS.items():
        nodes = [n for n, k in graph.nodes(data="kind") if k == kind]
        ax.scatter([pos[n][0] for n in nodes], [pos[n][1] for n in nodes], s=500, color=colour, zorder=2,
                   label=_LEGEND[kind], edgecolors="white")
        for n in nodes:
            ax.annotate(graph.nodes[n]["label"], pos[n], xytext=(0, -16), textcoords="offset points", ha="center",
                        va="top", fontsize=7, zorder=3)
    ax.set_title(TITLE)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.8, 3.5)
    ax.set_axis_off()
    ax.legend(loc="upper left", fontsize=8, frameon=False, markerscale=0.5)
    return figure
