"""Checks for chapter 6 (命名空间和网络 namespaces, user ids and networks): every answer is judged by
running the scenario on the checks' engine (containers, networks, ``echo $$``, ``readlink
/proc/self/ns/*``, ``nc`` between containers, a request to a published port) or, for uid maps and
IPAM, by the model's own ``IdMaps`` and ``Subnet``, which both backends use.  Nothing compares text.

On the kernel (``$LAYERLAB_BACKEND=real``) networks need root: a rootless engine has only
``--network none`` and ``host``, so the network checks then say so and run on the model (as notebook
06 does).  Networks get names of their own on the kernel (bridges are named after networks, and
another engine on the host may use the same names), and a subnet the host already routes is
replaced by a free one of the same size, its addresses translated back.  Everything a check makes
is removed when it ends, also when it fails.  Every check raises :class:`AssertionError` whose
message names the concept a wrong answer misses.
"""

from __future__ import annotations

import http.client
import re
import secrets
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from ipaddress import IPv4Address, IPv4Network
from itertools import islice
from typing import TYPE_CHECKING, Any

from sim.errors import ConflictError, InvalidNetworkError, LayerlabError, NetworkNotFoundError
from sim.exercises._engine import backend_name, scratch_engine
from sim.exercises._properties import Mutant, check_property
from sim.network import HOST_NAMESPACES, NamespaceAllocator, Subnet, parse_id_map

if TYPE_CHECKING:
    from sim.containers.core import EngineCore

__all__ = ["NAMESPACE_KINDS_ASKED", "namespaces_shared", "check_namespaces", "check_uid_map", "reachability",
           "check_reachability", "addresses", "check_addresses", "check_publish", "IPAM_MUTANTS",
           "check_ipam_property"]

IMAGE = "busybox"
#: The namespace kinds :func:`check_namespaces` asks about (user and cgroup depend on the engine:
#: rootless or not, and the kernel runtime keeps the host's cgroup namespace).
NAMESPACE_KINDS_ASKED = ("mnt", "pid", "net", "uts", "ipc")
_PORT = 8080  # where every container of the reachability scenario serves
_SERVE = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www"
_WHY_NS = {  # why a kind is not shared with the host (net: for a container on no network)
    "net": "a container made without --network gets a network namespace of its own with only lo (layerlab's default "
           "network is none)",
    "mnt": "its own mount namespace: the container's root file system is mounted there, not on the host",
    "pid": "its own PID namespace: that is why its command is PID 1",
    "uts": "its own UTS namespace, also with --network host: hostname is the container's own, not the host's",
    "ipc": "its own IPC namespace: System V IPC and message queues are the container's",
}


def _fail(hints: Sequence[str]) -> None:
    if hints:
        raise AssertionError("; ".join(hints))


def _names(answer: object, what: str) -> set[str]:
    if isinstance(answer, str) or not isinstance(answer, Iterable):
        raise AssertionError(f"{what} must be a set of names, not {type(answer).__name__}")
    return {str(a) for a in answer}


# -- 1. namespaces and PID 1 ---------------------------------------------------------------------

def namespaces_shared(network: str = "none") -> tuple[int, set[str]]:
    """Run a ``busybox`` container with ``network`` (``"none"`` or ``"host"``) on the checks'
    engine: what ``echo $$`` prints in it, and which of :data:`NAMESPACE_KINDS_ASKED` it shares
    with the host.  On the kernel the container reads ``/proc/self/ns/*`` and the check compares
    them with its own; the model's shell has no ``readlink``, so there the model's rule decides
    (:meth:`sim.network.NamespaceAllocator.for_container`)."""
    if network not in ("none", "host"):
        raise InvalidNetworkError(f"network must be 'none' or 'host', not {network!r}")
    live = backend_name() != "sim"
    script = "echo $$" + ("".join(f"; echo {k} $(readlink /proc/self/ns/{k})" for k in NAMESPACE_KINDS_ASKED)
                          if live else "")
    with scratch_engine() as engine:
        ran = engine.run(IMAGE, script, network=network, remove=True)
        if ran.exit_code != 0:
            raise RuntimeError(f"the container failed (exit {ran.exit_code}): {ran.output.strip()}")
        lines = ran.stdout.decode().split("\n")
        if live:
            import os

            inside = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
            shared = {k for k in NAMESPACE_KINDS_ASKED if inside.get(k) == os.readlink(f"/proc/self/ns/{k}")}
        else:
            made = NamespaceAllocator().for_container(host_network=network == "host",
                                                      user_namespace=engine.id_maps.user_namespace)
            shared = {str(k) for k in made.shared_with(HOST_NAMESPACES)} & set(NAMESPACE_KINDS_ASKED)
    return int(lines[0]), shared


def check_namespaces(pid: int, shared: Iterable[str], *, network: str = "none") -> None:
    """``pid`` is what ``echo $$`` prints in a ``busybox`` container run with ``network`` and
    ``shared`` the kinds of :data:`NAMESPACE_KINDS_ASKED` it shares with the host
    (:func:`namespaces_shared`).  Raises :class:`AssertionError` with one hint per mistake."""
    given = _names(shared, "shared")
    unknown = sorted(given - set(NAMESPACE_KINDS_ASKED))
    if unknown:
        raise AssertionError(f"{unknown} are not asked: name kinds among {', '.join(NAMESPACE_KINDS_ASKED)}")
    true_pid, truth = namespaces_shared(network)
    hints = []
    if pid != true_pid:
        hints.append(f"echo $$ prints {true_pid}, not {pid!r}: the container's command is PID {true_pid} in its own PID "
                     "namespace; only the host sees it under another PID (PID 1 inside is PID N outside)"
                     + (", and --network host shares the network only" if network == "host" else ""))
    hints += [f"{kind} is not shared: {_WHY_NS[kind]}" for kind in sorted(given - truth)]
    hints += ["net is shared: --network host means the host's network namespace (its interfaces, its ports), while "
              "every other namespace stays the container's own" if kind == "net" else
              f"{kind} is shared with the host here" for kind in sorted(truth - given)]
    _fail(hints)


# -- 2. uid maps ---------------------------------------------------------------------------------

def check_uid_map(uid_map: str, *, to_host: Mapping[int, int | None], from_host: Mapping[int, int]) -> None:
    """For the user namespace whose ``/proc/self/uid_map`` is ``uid_map`` (rows of ``inside outside
    count``): ``to_host[uid]`` is the host uid of ``uid`` inside (the owner on the host of a file it
    creates; ``None`` when the map does not map it, so no process can have it) and
    ``from_host[uid]`` is what a file a host ``uid`` owns reads as inside (65534 when unmapped).

    The truth is :class:`sim.containers.userns.IdMaps`: the class both engines write into the
    kernel's maps, and whose ``require`` refuses ``--user`` with an unmapped uid before a container
    starts.  Raises :class:`AssertionError` with one hint per wrong number.
    """
    from sim.containers.userns import OVERFLOW_ID, IdMaps, IdRange

    rows = tuple(IdRange(m.inside, m.outside, m.count) for m in parse_id_map(uid_map))
    maps = IdMaps(uids=rows, gids=rows, kind="subordinate")
    if not isinstance(to_host, Mapping) or not isinstance(from_host, Mapping):
        raise AssertionError("to_host and from_host must be dicts of uid -> uid")
    hints = []
    for uid, answer in to_host.items():
        truth = maps.uid_to_host(uid)
        if answer == truth:
            continue
        if truth is None:
            hints.append(f"uid {uid} inside is not mapped (no row covers it): a process cannot become it (the engine "
                         f"refuses --user {uid}), so there is no host uid" + (
                             f"; {OVERFLOW_ID} is how an unmapped id *reads* inside, not a uid a process can have"
                             if answer == OVERFLOW_ID else ""))
        elif answer == uid:
            hints.append(f"uid {uid} inside is host uid {truth}, not {uid}: a user namespace's map moves every id of "
                         "a row: outside + (uid - inside)")
        else:
            hints.append(f"uid {uid} inside is host uid {truth}, not {answer!r}: find the row with inside <= {uid} < "
                         f"inside + count, then outside + ({uid} - inside)")
    for uid, answer in from_host.items():
        truth_inside = maps.uid_from_host(uid)
        if answer == truth_inside:
            continue
        if truth_inside == OVERFLOW_ID:
            hints.append(f"a file host uid {uid} owns reads as owned by {OVERFLOW_ID} (nobody) inside, not {answer!r}: "
                         "the map does not cover that host uid, and an unmapped id shows as the overflow id")
        else:
            hints.append(f"a file host uid {uid} owns reads as uid {truth_inside} inside, not {answer!r}: read the "
                         "map backwards: inside + (host uid - outside)")
    _fail(hints)


# -- the scratch networks of checks 3 to 5 --------------------------------------------------------

class _Lab:
    """A scratch engine with networks: ``name(n)`` is network ``n``'s name in the engine,
    ``as_asked`` moves an address of a substitute subnet back into the exercise's, ``live`` says
    the kernel builds it.  On a rootless kernel engine the model (with its uid map) stands in."""

    def __init__(self, engine: EngineCore, live: bool) -> None:
        self.engine, self.live = engine, live
        self._names: dict[str, str] = {}
        self._subnets: dict[str, tuple[IPv4Network, IPv4Network]] = {}

    def name(self, network: str) -> str:
        return self._names.get(network, network)

    def network(self, name: str, subnet: str | None = None) -> str:
        """Make network ``name`` (``subnet`` or the engine's default); its name in the engine."""
        real = f"{name}-{secrets.token_hex(3)}" if self.live else name
        wanted = IPv4Network(subnet) if subnet else None
        # The kernel refuses a subnet the host routes already (another engine's bridge, its LAN): then
        # the first free one of the same size.
        others = islice(IPv4Network("10.89.0.0/16").subnets(new_prefix=wanted.prefixlen if wanted else 24), 512)
        for candidate in [subnet, *map(str, others)]:
            try:
                info = self.engine.create_network(real, subnet=candidate)
                break
            except (ConflictError, InvalidNetworkError) as exc:
                if "overlaps" not in str(exc):
                    raise
        else:
            raise ConflictError(f"no subnet like {subnet or '10.89.0.0/24'} is free on this host")
        self._names[name] = real
        if wanted is not None:
            self._subnets[name] = (wanted, IPv4Network(info.subnet))
        return real

    def as_asked(self, network: str, address: str) -> str:
        """``address`` of network ``network`` as it would read in the subnet the exercise gave."""
        if network not in self._subnets:
            return address
        wanted, made = self._subnets[network]
        return str(wanted.network_address + (int(IPv4Address(address)) - int(made.network_address)))

    def cleanup(self) -> None:
        """Every container, then every network (a kernel engine keeps its bridges when it closes)."""
        problems: list[str] = []
        for info in self.engine.containers():
            try:
                self.engine.remove(info.id, force=True)
            except LayerlabError as exc:
                problems.append(f"container {info.name}: {exc}")
        for net in self.engine.networks():
            try:
                self.engine.remove_network(net.name)
            except LayerlabError as exc:
                problems.append(f"network {net.name}: {exc}")
        if problems:
            raise RuntimeError("the check could not remove what it made: " + "; ".join(problems))


@contextmanager
def _lab() -> Iterator[_Lab]:
    with ExitStack() as stack:
        engine = stack.enter_context(scratch_engine())
        live = backend_name() != "sim"
        if live and engine.id_maps.user_namespace:  # a rootless engine: bridges need CAP_NET_ADMIN on the host
            print("a rootless engine has no networks (bridges and veth pairs need root): this check runs on the model")
            from sim.engine import SimEngine

            model = SimEngine(id_maps=engine.id_maps)
            stack.callback(model.close)
            engine, live = model, False
        lab = _Lab(engine, live)
        try:
            yield lab
        except BaseException:
            try:
                lab.cleanup()
            except RuntimeError as exc:  # the check's own error is the one to report
                print(exc, file=sys.stderr)
            raise
        lab.cleanup()


def _retry(engine: EngineCore, ref: str, script: str) -> str:
    """Run ``script`` in the running container ``ref`` until it exits 0 (a few seconds at most)."""
    result = engine.exec(ref, f"i=0; while [ $i -lt 40 ]; do {script} && exit 0; sleep 0.05; i=$((i+1)); done; exit 1")
    return result.stdout.decode(errors="replace") if result.exit_code == 0 else ""


# -- 3. who reaches whom, which names resolve ----------------------------------------------------

def _pair(item: object) -> frozenset[str]:
    if isinstance(item, str) or not isinstance(item, Iterable):
        raise AssertionError(f"a pair is two container names, such as ('web', 'api'), not {item!r}")
    pair = frozenset(str(x) for x in item)
    if len(pair) != 2:
        raise AssertionError(f"a pair is two different container names, not {item!r}")
    return pair


def reachability(networks: Sequence[str], containers: Mapping[str, Sequence[str]],
                 aliases: Mapping[tuple[str, str], Sequence[str]], names: Sequence[str]
                 ) -> tuple[set[frozenset[str]], dict[str, set[str]]]:
    """Make ``networks``, then each container of ``containers`` (name -> its networks, the first
    at ``create``, the others by ``network connect``; none: ``--network none``), with
    ``aliases[(container, network)]`` on that network, each serving on port 8080.  Returns the
    pairs that reach each other and, per container, which of ``names`` resolve in it.

    On the kernel every container runs: a pair reaches when ``nc`` connects both ways to an
    address of the other, a name resolves when ``nc NAME 8080`` does not say ``bad address``.
    On the model: :meth:`~sim.network.NetworkModel.reachable` and ``resolve``.  Aliases are given
    with ``network connect``, so one on a container's first network raises
    :class:`~sim.errors.InvalidNetworkError` before anything is made."""
    for (name, net), extra in aliases.items():
        if name not in containers or net not in containers[name][1:]:
            raise InvalidNetworkError(f"alias {list(extra)} of {name} on {net}: aliases are given with network connect, "
                                      "on a network the container joins after its first")
    with _lab() as lab:
        engine = lab.engine
        for net in networks:
            lab.network(net)
        for name, joined in containers.items():
            first = lab.name(joined[0]) if joined else "none"
            engine.create(IMAGE, _SERVE.format(text=name, port=_PORT), name=name, network=first)
            for net in joined[1:]:
                engine.connect(lab.name(net), name, aliases=aliases.get((name, net), ()))
        reached: dict[str, set[str]] = {n: set() for n in containers}
        resolved: dict[str, set[str]] = {n: set() for n in containers}
        if lab.live:
            for name in containers:
                engine.start(name, detach=True)
            for name in containers:
                _retry(engine, name, f"nc 127.0.0.1 {_PORT} </dev/null >/dev/null 2>&1")
            ips = {n: [e.ip for e in engine.container_network(n).endpoints] for n in containers}
            for source in containers:
                probes = [f"(nc -w 1 {ip} {_PORT} </dev/null >/dev/null 2>&1 && echo reach {target}) &"
                          for target in containers if target != source for ip in ips[target]]
                probes += [f"(nc -w 1 {n} {_PORT} </dev/null 2>&1 | grep -q 'bad address' || echo name {n}) &"
                           for n in names]
                out = engine.exec(source, " ".join(probes) + " wait").stdout.decode()
                for word, target in (line.split(" ", 1) for line in out.splitlines() if " " in line):
                    (reached if word == "reach" else resolved)[source].add(target)
        else:
            model = engine.network_model
            ids = {c.name: c.id for c in engine.containers()}  # the model knows containers by id
            for source in containers:
                reached[source] = {t for t in containers if t != source and model.reachable(ids[source], ids[t])}
                resolved[source] = {n for n in names if model.resolve(ids[source], n) is not None}
    pairs = {frozenset((a, b)) for a in containers for b in reached[a] if a in reached[b]}
    return pairs, resolved


def check_reachability(pairs: Iterable[Iterable[str]], resolves: Mapping[str, Iterable[str]], *,
                       networks: Sequence[str], containers: Mapping[str, Sequence[str]],
                       aliases: Mapping[tuple[str, str], Sequence[str]], names: Sequence[str]) -> None:
    """``pairs`` are exactly the unordered pairs of containers that reach each other and
    ``resolves[c]`` the names among ``names`` that resolve in container ``c`` (for every ``c`` it
    lists), in the scenario of :func:`reachability`.  Raises :class:`AssertionError` with one hint
    per wrong or missing pair or name."""
    if isinstance(pairs, str) or not isinstance(pairs, Iterable):
        raise AssertionError(f"pairs must be a set of (name, name) pairs, not {type(pairs).__name__}")
    given = {_pair(p) for p in pairs}
    if not isinstance(resolves, Mapping) or not resolves:
        raise AssertionError("resolves must be a dict of container -> the names that resolve in it")
    unknown = sorted({n for p in given for n in p} - set(containers)) + sorted(set(resolves) - set(containers))
    if unknown:
        raise AssertionError(f"no container {unknown[0]!r}: the containers are {', '.join(containers)}")
    truth, resolved = reachability(networks, containers, aliases, names)
    nets = {c: set(j) for c, j in containers.items()}
    hints = []
    for pair in sorted(given - truth, key=sorted):
        a, b = sorted(pair)
        lonely = [c for c in (a, b) if not nets[c]]
        hints.append(f"{a}-{b}: {lonely[0]} runs with --network none: a namespace with only lo, it reaches no other "
                     "container" if lonely else f"{a}-{b}: they share no network: a bridge switches only between its "
                     "own ports, the host forwards nothing between bridges, and a container on two networks routes "
                     "nothing between them")
    for pair in sorted(truth - given, key=sorted):
        a, b = sorted(pair)
        shared = sorted(nets[a] & nets[b])
        hints.append(f"{a}-{b} is missing: both are on {', '.join(shared)}: containers on one network reach each "
                     "other (a container connected to two networks reaches both sides)")
    alias_of = {alias: key for key, extra in aliases.items() for alias in extra}
    for container, answer in resolves.items():
        got = _names(answer, f"resolves[{container!r}]")
        if not got <= set(names):
            raise AssertionError(f"{sorted(got - set(names))} are not asked: name only names among {', '.join(names)}")
        for name in sorted(got - resolved[container]):
            if name in alias_of:
                hints.append(f"{name} does not resolve in {container}: it is {alias_of[name][0]}'s alias on "
                             f"{alias_of[name][1]} only, and an alias resolves only on the network it was given on")
            elif name in containers and not nets[name]:
                hints.append(f"{name} does not resolve in {container}: {name} is on no network, so no /etc/hosts "
                             "lists it")
            else:
                hints.append(f"{name} does not resolve in {container}: /etc/hosts lists only containers that share "
                             f"a network with {container}; there is no DNS server")
        for name in sorted(resolved[container] - got):
            hints.append(f"{name} resolves in {container}: " + (
                "a container's /etc/hosts lists its own addresses and names too" if name == container else
                "its /etc/hosts lists every container on a shared network by name, and the aliases given on it"))
    _fail(hints)


# -- 4. addresses --------------------------------------------------------------------------------

def addresses(subnet: str, steps: Sequence[tuple[str, str]]) -> dict[str, str | None]:
    """On a network with ``subnet``, run ``steps``: ``("create", name)`` makes a container on it,
    ``("rm", name)`` removes one.  Returns each created container's address (``None``: the
    create was refused, no address left), as the engine gave it; on the kernel each container
    that is still there runs ``ip -4 addr show eth0`` and the kernel's address is the answer."""
    bad = [action for action, _ in steps if action not in ("create", "rm")]
    if bad:
        raise InvalidNetworkError(f"unknown step {bad[0]!r}: 'create' or 'rm'")
    made: dict[str, str | None] = {}
    with _lab() as lab:
        net = lab.network("lab", subnet)
        for action, name in steps:
            if action == "create":
                try:
                    lab.engine.create(IMAGE, "ip -4 -o addr show dev eth0", name=name, network=net)
                except ConflictError:
                    made[name] = None
                    continue
                made[name] = lab.engine.container_network(name).endpoints[0].ip
            else:
                lab.engine.remove(name)
        for name, address in made.items():
            if address is not None and lab.live and any(c.name == name for c in lab.engine.containers()):
                ran = lab.engine.start(name)
                found = re.search(r"inet ([0-9.]+)/", ran.stdout.decode() if ran is not None else "")
                if found is None:
                    raise RuntimeError(f"{name} shows no IPv4 address on eth0: {ran}")
                made[name] = found.group(1)
        return {n: (lab.as_asked("lab", a) if a is not None else None) for n, a in made.items()}


def check_addresses(answer: Mapping[str, str | None], subnet: str, steps: Sequence[tuple[str, str]],
                    asked: Sequence[str]) -> None:
    """``answer[name]`` is :func:`addresses`' address of every container in ``asked`` (``None``
    when it gets none).  Raises :class:`AssertionError` with one hint per wrong address."""
    if not isinstance(answer, Mapping):
        raise AssertionError(f"the answer must be a dict of container -> address, not {type(answer).__name__}")
    missing = [n for n in asked if n not in answer]
    if missing:
        raise AssertionError(f"give an address (or None) for {', '.join(missing)}")
    if not set(asked) <= {n for a, n in steps if a == "create"}:
        raise InvalidNetworkError(f"asked {list(asked)}: ask only for containers the steps create")
    truth = addresses(subnet, steps)
    network = IPv4Network(subnet)
    gateway, broadcast = network.network_address + 1, network.broadcast_address
    hints = []
    for name in asked:
        made_at = next((i for i, (a, n) in enumerate(steps) if a == "create" and n == name), len(steps))
        released = [n for a, n in steps[:made_at] if a == "rm"]
        got, want = answer[name], truth[name]
        try:
            ip = IPv4Address(str(got)) if got is not None else None
        except ValueError:
            hints.append(f"{name}: {got!r} is not an IPv4 address")
            continue
        if ip == (IPv4Address(want) if want is not None else None):
            continue
        if want is None:
            hints.append(f"{name} gets no address: {network} has {network.num_addresses} addresses, and the network "
                         f"address, the gateway and the broadcast address leave {network.num_addresses - 3} for "
                         "containers; the next create fails with 'no free address left'")
        elif ip is None:
            hints.append(f"{name} gets {want}: there is still a free address in {network}")
        elif ip not in network:
            hints.append(f"{name}: {ip} is not in {network}: a network hands out addresses of its own subnet only")
        elif ip == gateway:
            hints.append(f"{name}: {ip} is the gateway, the bridge's own address on the host: never a container's")
        elif ip in (network.network_address, broadcast):
            hints.append(f"{name}: {ip} is the network's {'broadcast' if ip == broadcast else 'network'} address: "
                         "never a host's")
        elif released and ip > IPv4Address(want):
            hints.append(f"{name} gets {want}, not {ip}: a released address is free again ({', '.join(released)} "
                         "removed), and IPAM hands out the lowest free address")
        else:
            hints.append(f"{name} gets {want}, not {ip}: addresses are handed out lowest free first, after the gateway")
    _fail(hints)


# -- 5. publishing a port ------------------------------------------------------------------------

def _host_get(port: int, timeout: float = 4.0) -> str:
    """``GET /`` on 127.0.0.1:``port`` from the host; the body, or "" when nothing answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)  # no proxy, unlike urllib
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            if response.status == 200:
                return response.read().decode(errors="replace").strip()
        except (OSError, http.client.HTTPException):
            pass  # the forwarder or httpd is not up yet
        finally:
            connection.close()
        time.sleep(0.1)
    return ""


def check_publish(network: str, publish: Sequence[str], *, service: str, service_port: int, host_port: int,
                  client: str, client_network: str, networks: Sequence[str]) -> None:
    """Container ``service`` (busybox ``httpd`` on ``service_port``) created with ``network`` and
    ``-p`` options ``publish`` answers ``GET /`` both on the host at ``127.0.0.1:host_port`` and
    to container ``client`` on ``client_network`` at ``http://service:service_port/``.

    On the kernel both requests are made; on the model the host's request reaches the service
    when a published mapping leads ``host_port`` to ``service_port``, and the client's when the
    model says the two reach each other and the name resolves.  Raises :class:`AssertionError`
    with the hint (the engine's own refusal of a spec, ports swapped, the wrong network)."""
    if not isinstance(network, str):
        raise AssertionError(f"network must be a network's name, not {type(network).__name__}")
    if network == "host":
        raise AssertionError(f"--network host runs the service in the host's own network namespace: it would listen "
                             f"on the host's port {service_port} itself and -p does not apply; put it on a network")
    if network not in networks and network != "none":
        raise AssertionError(f"there is no network {network!r}: the networks are {', '.join(networks)}")
    with _lab() as lab:
        engine = lab.engine
        for net in networks:
            lab.network(net)
        engine.create(IMAGE, "sleep 300", name=client, network=lab.name(client_network))
        try:
            engine.create(IMAGE, _SERVE.format(text=service, port=service_port), name=service,
                          network=lab.name(network), publish=[publish] if isinstance(publish, str) else list(publish))
        except (InvalidNetworkError, ConflictError, NetworkNotFoundError) as exc:
            raise AssertionError(f"the engine refuses it: {exc}") from None
        ports = engine.container_network(service).ports
        if lab.live:
            engine.start(client, detach=True)
            engine.start(service, detach=True)
            from_host = _host_get(host_port) == service
            from_client = _retry(engine, client, f"wget -q -O - http://{service}:{service_port}/").strip() == service
        else:
            model = engine.network_model
            from_host = any(p.host_port == host_port and p.container_port == service_port for p in ports)
            a, b = (next(c.id for c in engine.containers() if c.name == n) for n in (client, service))
            from_client = model.reachable(a, b) and model.resolve(a, service) is not None
    hints = []
    if not from_host:
        if any(p.host_port == service_port and p.container_port == host_port for p in ports):
            hints.append(f"the ports are swapped: -p is HOST_PORT:CONTAINER_PORT, so write {host_port}:{service_port} "
                         f"(yours listens on the host's {service_port} and forwards to the container's {host_port}, "
                         "where nothing listens)")
        elif any(p.host_port == host_port for p in ports):
            hints.append(f"127.0.0.1:{host_port} forwards to a container port where nothing listens: the service "
                         f"listens on {service_port}, the part after the colon")
        elif ports:
            hints.append(f"nothing listens on the host's {host_port}: the host port (before the colon) is where the "
                         f"host's client connects, and yours publishes {', '.join(str(p) for p in ports)}")
        else:
            hints.append(f"no port is published: without -p {host_port}:{service_port} the host reaches nothing of "
                         "the container at 127.0.0.1")
    if not from_client:
        hints.append(f"{client} (on {client_network}) cannot reach {service} on {network}: -p opens a port on the "
                     "host's 127.0.0.1 only; another container reaches the service over a network both are on, by "
                     "its name and the container's own port")
    _fail(hints)


# -- 6. the IPAM property: subnets that break one rule -------------------------------------------

class _Broken:
    """A :class:`~sim.network.Subnet` (``inner``) whose ``allocate``/``release`` break one rule:
    ``"gateway"`` hands out the gateway first (a loop that starts one too low), ``"broadcast"``
    hands out the broadcast address once the hosts are used up (a loop that ends one too late),
    ``"next"`` makes ``release`` free the next address in use above the one named (an index off by
    one), so an address still in use is handed out again.  Everything else is the subnet's."""

    def __init__(self, inner: Subnet, rule: str) -> None:
        self._inner, self._rule = inner, rule
        self._extra: IPv4Address | None = None  # the address the rule handed out, if it is out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"<Subnet({self._inner.cidr!r}) broken: {self._rule}>"

    def allocate(self) -> IPv4Address:
        if self._rule == "gateway" and self._extra is None:
            self._extra = self._inner.gateway
            return self._extra
        try:
            return self._inner.allocate()
        except ConflictError:
            if self._rule != "broadcast" or self._extra is not None:
                raise
            self._extra = self._inner.network.broadcast_address
            return self._extra

    def release(self, address: IPv4Address | str) -> None:
        ip = IPv4Address(str(address))
        if ip == self._extra:
            self._extra = None
            return
        above = [a for a in self._inner.allocated if a > ip] if self._rule == "next" else []
        self._inner.release(above[0] if above and ip in self._inner.allocated else ip)


class _NewSubnet:
    """The ``new_subnet`` a property gets: ``new_subnet(cidr)`` is a Subnet, broken by ``rule`` if given."""

    def __init__(self, rule: str | None = None, name: str = "") -> None:
        self._rule, self._name = rule, name

    def __call__(self, cidr: str) -> Subnet | _Broken:
        return Subnet(cidr) if self._rule is None else _Broken(Subnet(cidr), self._rule)

    def __repr__(self) -> str:
        return f"<new_subnet: {self._name}>" if self._name else "Subnet"


#: Each mutant and the ``new_subnet`` that has its bug.
IPAM_MUTANTS = tuple((mutant, _NewSubnet(rule, mutant.name)) for mutant, rule in (
    (Mutant("allocate hands out the gateway", "check that no address allocate() returns is the subnet's gateway (its "
            "first host address, the bridge's own)"), "gateway"),
    (Mutant("a full subnet hands out its broadcast address", "allocate until the subnet is full (a /29 holds 5) and "
            "check every address is a host address: never the network or broadcast address"), "broadcast"),
    (Mutant("release frees the wrong address", "release an address while higher ones are in use, allocate again and "
            "check allocate() never returns an address that is still in use"), "next"),
))


def check_ipam_property(prop: object, *, max_examples: int = 60) -> None:
    """Chapter 6: ``prop(new_subnet, ...)``, where ``new_subnet(cidr)`` makes an address allocator
    (a :class:`~sim.network.Subnet`: ``allocate``, ``release``, ``gateway``, ``network``,
    ``capacity``, ``allocated``), holds for the model's ``Subnet`` and catches each of
    :data:`IPAM_MUTANTS`.  Always on the model: the kernel backend's addresses are this same
    allocator's, applied with netlink."""
    check_property(prop, _NewSubnet(), list(IPAM_MUTANTS), max_examples=max_examples)
