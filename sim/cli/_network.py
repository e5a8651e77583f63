"""``layerlab network create|ls|inspect|rm|connect|disconnect``: Docker's network subcommands."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from sim.cli._command import Wrap, command_factory

__all__ = ["add_network_commands"]


def _network(args: argparse.Namespace, eng: Any) -> int:
    action = args.action
    if action == "create":
        info = eng.create_network(args.name, subnet=args.subnet)
        print(info.name if not args.json else json.dumps(asdict(info)))
    elif action == "ls":
        infos = eng.networks()
        if args.json:
            print(json.dumps([asdict(i) for i in infos]))
        else:
            rows = [("NAME", "SUBNET", "GATEWAY", "BRIDGE", "CONTAINERS")]
            rows += [(i.name, i.subnet, i.gateway, i.bridge, str(len(i.containers))) for i in infos]
            widths = [max(len(r[c]) for r in rows) for c in range(5)]
            print("\n".join("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows))
    elif action == "inspect":
        print(json.dumps(asdict(eng.inspect_network(args.name)), indent=1))
    elif action == "rm":
        eng.remove_network(args.name)
        print(args.name)
    elif action == "connect":
        endpoint = eng.connect(args.name, args.container, aliases=args.alias or ())
        print(f"{args.container}: {endpoint.interface} {endpoint.address} on {endpoint.network}")
    else:
        eng.disconnect(args.name, args.container)
    return 0


def add_network_commands(sub: Any, wrap: Wrap) -> None:
    command = command_factory(sub, wrap)
    p = command("network", _network, "网络 networks: a bridge per network, containers reach each other by name",
                json_flag=True)
    p.add_argument("action", choices=["create", "ls", "inspect", "rm", "connect", "disconnect"])
    p.add_argument("name", nargs="?", help="the network")
    p.add_argument("container", nargs="?", help="for connect and disconnect")
    p.add_argument("--subnet", help="for create: a private IPv4 subnet (default: the next free 10.89.N.0/24)")
    p.add_argument("--alias", action="append", help="for connect: another name on this network")
    p.set_defaults(network_parser=p)
