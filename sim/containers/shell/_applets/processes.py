"""The process and its identity: ``pwd``, ``id``, ``hostname``, ``env`` and ``sleep``."""

from __future__ import annotations

import errno
import re

from sim.containers.shell._applets._accounts import lookup_group, lookup_user, member_groups, passwd_entry
from sim.containers.shell._applets._common import UsageError, applet, getopt, open_read, show_usage, unsupported
from sim.containers.shell._proc import Proc, decode


@applet("pwd")
def pwd(p: Proc) -> int:
    try:
        opts, _ = getopt(p, p.argv[1:], "LP")
    except UsageError as e:
        return show_usage(p, "pwd", e.msg)
    physical = p.world.realpath(p.cwd)
    logical = p.env.get("PWD")
    # busybox's pwd applet is physical unless -L ("most scripts expect -P"); ash's builtin is logical
    if "L" in opts and "P" not in opts and logical and logical.startswith("/"):
        try:
            if p.world.realpath(logical) == physical:
                p.out(logical + "\n")
                return 0
        except OSError:
            pass
    p.out(physical + "\n")
    return 0


@applet("id")
def id_(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "ugGnrZ")
    except UsageError as e:
        return show_usage(p, "id", e.msg)
    if "Z" in opts:
        raise unsupported(p, "option -Z")
    if len(args) > 1 or sum(o in opts for o in "ugG") > 1 or (("n" in opts or "r" in opts) and not any(o in opts for o in "ugG")):
        return show_usage(p, "id")
    world = p.world
    if args:
        entry = passwd_entry(p, args[0])
        if entry is None:
            if args[0].isdigit():
                uid = int(args[0])
                entry_name = lookup_user(p, uid)
                if entry_name is None:
                    p.error(f"unknown user {args[0]}")
                    return 1
                entry = passwd_entry(p, entry_name)
                assert entry is not None
            else:
                p.error(f"unknown user {args[0]}")
                return 1
        uid, gid = int(entry[2]), int(entry[3])
        user: str | None = entry[0]
    else:
        uid, gid = world.uid, world.gid
        user = lookup_user(p, uid)
    # The process's own groups are what the runtime gave it (getgroups: the kernel's sorted list);
    # -G prints the gid first, then the rest.  A named user's are from /etc/group (getgrouplist).
    if world.groups is not None and not args:
        groups = list(world.groups)
        listed = [gid, *(g for g in groups if g != gid)]
    else:
        groups = listed = member_groups(p, user, gid)
    names = "n" in opts
    status = 0

    def show(value: int, name: str | None, prefix: str) -> str:
        nonlocal status
        if opts:
            if names:
                if name is None:
                    p.error(f"unknown ID {value}")
                    status = 1
                    return prefix + str(value)
                return prefix + name
            return prefix + str(value)
        return f"{prefix}{value}" + (f"({name})" if name is not None else "")

    if "u" in opts:
        p.out(show(uid, user, "") + "\n")
        return status
    if "g" in opts:
        p.out(show(gid, lookup_group(p, gid), "") + "\n")
        return status
    if "G" in opts:
        p.out(" ".join(show(g, lookup_group(p, g), "") for g in listed) + "\n")
        return status
    text = show(uid, user, "uid=") + show(gid, lookup_group(p, gid), " gid=")
    if groups:
        text += " groups=" + ",".join(show(g, lookup_group(p, g), "") for g in groups)
    p.out(text + "\n")
    return status


@applet("hostname")
def hostname(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "sidfF:", longopts={"short": "s", "domain": "d", "fqdn": "f", "file=": "F"})
    except UsageError as e:
        return show_usage(p, "hostname", e.msg)
    if "i" in opts:
        raise unsupported(p, "option -i (it resolves the name on the network)")
    world = p.world
    if "F" in opts or args:
        if "F" in opts:
            try:
                stream = open_read(p, opts["F"][-1])
                data = decode(stream.read())
                stream.close()
            except OSError as e:
                p.perror(f"can't open '{opts['F'][-1]}'", e)
                return 1
            lines = [ln_.strip() for ln_ in data.splitlines() if ln_.strip() and not ln_.strip().startswith("#")]
            if not lines:
                return 0
            name = lines[0]
        else:
            name = args[0]
        # a container runs without CAP_SYS_ADMIN: sethostname(2) fails even for root
        p.perror("sethostname", errno.EPERM)
        return 1
    name = world.hostname
    if "s" in opts:
        name = name.split(".", 1)[0]
    elif "d" in opts:
        name = name.split(".", 1)[1] if "." in name else ""
        if not name:
            return 0
    p.out(name + "\n")
    return 0


@applet("env")
def env(p: Proc) -> int:
    args = p.argv[1:]
    if args and args[0] == "-":
        args = ["-i", *args[1:]]
    try:
        opts, rest = _env_opts(p, args)
    except UsageError as e:
        return show_usage(p, "env", e.msg)
    environ = {} if "i" in opts else dict(p.env)
    for name in opts.get("u", []):
        environ.pop(name, None)
    while rest and "=" in rest[0]:
        name, _, value = rest[0].partition("=")
        environ.pop(name, None)
        environ[name] = value
        rest = rest[1:]
    if rest:
        status: int = p.world.exec_from_applet(p, rest, environ)
        return status
    sep = "\0" if "0" in opts else "\n"
    p.out("".join(f"{k}={v}{sep}" for k, v in environ.items()))
    return 0


def _env_opts(p: Proc, args: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    # getopt32 with "+": stop at the first operand (NAME=VALUE or PROG)
    out: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            i += 1
            break
        out.append(args[i])
        if args[i] in ("-u",) and i + 1 < len(args):
            out.append(args[i + 1])
            i += 1
        i += 1
    opts, _ = getopt(p, out, "iu:0", longopts={"ignore-environment": "i", "unset=": "u", "null": "0"})
    rest = args[i:]
    if rest and rest[0] == "-":
        opts.setdefault("i", [""])
        rest = rest[1:]
    return opts, rest


@applet("sleep")
def sleep(p: Proc) -> int:
    args = p.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        return show_usage(p, "sleep")
    total = 0.0
    for a in args:
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", a)
        if not m:
            if a == "inf" or a == "infinity":
                raise unsupported(p, "sleeping forever")
            p.error(f"invalid number '{a}'")
            return 1
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    p.world.advance_clock(total)
    return 0
