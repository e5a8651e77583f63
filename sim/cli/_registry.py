"""The registry subcommands of ``layerlab``: pull, push, login, logout, search, registry serve.

``pull``/``push`` draw a progress bar per blob on a terminal and print Docker's
lines otherwise.  ``login`` reads the password from ``--password-stdin`` or a
prompt that does not echo; it is checked against the registry, then kept in
``config.json`` (mode 0600) and never printed.  ``registry serve`` starts a
real registry (Debian's ``docker-registry``) on 127.0.0.1 until interrupted.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import sys
from pathlib import Path
from typing import Any

from sim.cli._command import Wrap, command_factory

__all__ = ["add_registry_commands"]


def _pull(args: argparse.Namespace, eng: Any) -> int:
    from sim.registries.progress import for_stream

    with for_stream(sys.stderr) as progress:
        result = eng.pull(args.image, progress=progress)
    print("\n".join(result.lines()))
    print(f"Status: Downloaded {args.image} ({result.bytes_received} bytes from {result.registry})")
    return 0


def _push(args: argparse.Namespace, eng: Any) -> int:
    from sim.registries.progress import for_stream

    with for_stream(sys.stderr) as progress:
        result = eng.push(args.image, chunk_size=args.chunk_size, progress=progress)
    print("\n".join(result.lines()))
    return 0


def _login(args: argparse.Namespace, eng: Any) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        print("layerlab: error: no password: use --password-stdin (the password is never an argument)", file=sys.stderr)
        return 2
    print(eng.login(args.server, args.username, password))
    return 0


def _logout(args: argparse.Namespace, eng: Any) -> int:
    from sim.containers._distribution import registry_host

    host = registry_host(args.server)
    print(f"Removing login credentials for {host}" if eng.logout(args.server) else f"Not logged in to {host}")
    return 0


def _search(args: argparse.Namespace, eng: Any) -> int:
    names = eng.search(args.term or "", server=args.server)
    print("\n".join(["NAME", *names]))
    return 0


#: The real server lives in realrt, which sim never imports by name: found on first use.
SERVER = ("realrt.registries.server", "serve")


def _serve(args: argparse.Namespace) -> int:
    module_name, function = SERVER
    try:
        serve = getattr(importlib.import_module(module_name), function)
    except ImportError as exc:
        print(f"layerlab: error: `registry serve` needs the real backend's packages: {exc}", file=sys.stderr)
        return 1
    root = Path(args.root) if args.root else None
    return int(serve(root, mirror_of=args.mirror_of, auth=args.auth, port=args.port, out=sys.stdout))


def add_registry_commands(sub: Any, wrap: Wrap) -> None:
    command = command_factory(sub, wrap)
    p = command("pull", _pull, "download an image from a registry (仓库)")
    p.add_argument("image", help="NAME[:TAG|@DIGEST]; latest when no tag is given")
    p = command("push", _push, "upload an image to its registry")
    p.add_argument("image", help="NAME[:TAG], the registry host first (localhost:5000/app:1)")
    p.add_argument("--chunk-size", type=int, metavar="BYTES", help="upload in chunks of this size (PATCH) instead of one PUT")
    p = command("login", _login, "log in to a registry; the login is kept in config.json (mode 0600)")
    p.add_argument("server", nargs="?", help="host[:port] (default: docker.io)")
    p.add_argument("-u", "--username", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = command("logout", _logout, "forget the login for a registry")
    p.add_argument("server", nargs="?")
    p = command("search", _search, "list a registry's repositories (its catalog) whose name contains TERM")
    p.add_argument("term", nargs="?")
    p.add_argument("--server", help="host[:port] (default: docker.io)")
    registry = sub.add_parser("registry", help="run a real registry on 127.0.0.1", description="run a real registry")
    actions = registry.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    serve = actions.add_parser("serve", help="start Debian's docker-registry on 127.0.0.1 until interrupted")
    serve.add_argument("--mirror-of", metavar="URL", help="a pull-through cache of this registry URL (on this machine)")
    serve.add_argument("--auth", action="store_true", help="htpasswd accounts over TLS with a generated CA")
    serve.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    serve.add_argument("--root", help="config and data folder (default: a temporary one, removed at exit)")
    serve.set_defaults(handler=_serve, subparser=serve)
