"""ssh_config, read as OpenSSH reads it (what `ssh -G` prints), parsed once per file.

netops has its own reader rather than paramiko's `SSHConfig`, which knows no `Include` and
whose look-up tests every `Host` block against the name. Here, as in OpenSSH's readconf.c:

- lines are `Keyword value`, `Keyword=value` or `Keyword = value`, keywords in any case,
  values shell-like quoted; `#` starts a comment;
- `Host` patterns (`*`, `?`, `!negated`, several per line) match the name as given, case and
  all; `Match host|originalhost|user|localuser|exec|all` (with `!`, comma-separated patterns,
  case-insensitive host names) is decided when its line is reached, `host` being the HostName
  set so far (with `%h`); `Match canonical|final` (a second pass) is refused;
- the first value obtained wins, except for IdentityFile (and the other list options), which
  accumulate; ProxyJump and ProxyCommand exclude each other, the first one set wins;
- `Include` reads each file matching its glob (sorted), relative paths from ~/.ssh for the
  user's files (and `--ssh-config`, which is read as `ssh -F` reads one) or /etc/ssh for the
  system's; inside a `Host`/`Match` block it applies only when that block does, and a `Host`
  or `Match` line in an included file does not change the including file's state.

`tests/contract/test_ssh_config_openssh.py` compares the outcome with `ssh -G` on real-world
configs. A fleet's config is one `Host` block per node (as the lab writes it): a look-up skips
every block of literal names that does not list the name (an index per name), so it costs
O(wildcard blocks), not O(nodes).
"""

from __future__ import annotations

import bisect
import getpass
import glob
import os
import re
import shlex
import socket
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netops.errors import UserError

if TYPE_CHECKING:
    from netops.inventory.model import Host

DEFAULT_ALIVE_INTERVAL = 10.0
DEFAULT_ALIVE_COUNT_MAX = 3
"""netops' defaults for ServerAliveInterval / ServerAliveCountMax (OpenSSH's are 0, off, and
3): a node that vanishes mid-step is declared dead after 10 x (3 + 1) = 40 s of silence, well
inside the default step timeout (300 s)."""

MAX_INCLUDE_DEPTH = 16
"""OpenSSH's READCONF_MAX_DEPTH: deeper `Include` nesting is an error (a loop)."""
_WILD = re.compile(r"[*?!]")
_LISTS = frozenset({"identityfile", "certificatefile", "localforward", "remoteforward",
                    "dynamicforward", "sendenv"})
"""Options whose every value is kept (in order), not only the first."""
_PROXIES = ("proxyjump", "proxycommand")
_SYSTEM_DIR = Path("/etc/ssh")


def default_files() -> tuple[Path, ...]:
    """What OpenSSH reads without -F: the user's file first, then the system's."""
    return (Path.home() / ".ssh" / "config", Path("/etc/ssh/ssh_config"))


@dataclass(frozen=True, slots=True)
class _Event:
    """One line that matters, in reading order (includes expanded in place)."""

    kind: str
    """`host`, `match`, `option`, `enter` (an included file starts) or `leave`."""
    key: str = ""
    args: tuple[str, ...] = ()
    where: str = ""
    """file:line, for errors."""

    @property
    def literal(self) -> bool:
        """A `Host` line of plain names only (no wildcard, no negation)."""
        return self.kind == "host" and not any(_WILD.search(a) for a in self.args)


_LINE = re.compile(r"([^\s=]+)\s*(?:=\s*)?(.*)$")
_SHELL_SYNTAX = re.compile(r"[\"'\\#]")
"""What makes `shlex.split` differ from `str.split` (quotes, escapes, comments); shlex costs
~20 us a line, 15 ms for a 100-host ssh_config."""


def _split(line: str, where: str) -> tuple[str, list[str]] | None:
    """(keyword in lower case, its arguments) of one line; None for a blank or comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    m = _LINE.match(text)
    if m is None:
        return None
    rest = m.group(2)
    if not _SHELL_SYNTAX.search(rest):  # most lines: shlex would split at blanks only
        return m.group(1).lower(), rest.split()
    try:
        args = shlex.split(rest, comments=True)
    except ValueError as e:
        raise UserError(f"{where}: cannot read this ssh_config line: {e}") from None
    return m.group(1).lower(), args


def _matches(pattern: str, name: str, *, fold: bool) -> bool:
    if "*" not in pattern and "?" not in pattern:  # a plain name (a fleet's usual Host line)
        return pattern.lower() == name.lower() if fold else pattern == name
    return _compiled(pattern.lower() if fold else pattern, fold).match(name) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z", re.IGNORECASE if fold else 0)


def match_list(name: str, patterns: str, *, fold: bool = True) -> bool:
    """OpenSSH's match_pattern_list: comma-separated patterns (`_match_any`)."""
    return _match_any(name, patterns.split(","), fold=fold)


def _match_any(name: str, patterns: Iterable[str], *, fold: bool) -> bool:
    """`!` negates; a negated match wins, else any positive match (a `Host` line's patterns,
    or a `Match` list's)."""
    found = False
    for item in patterns:
        negated = item.startswith("!")
        if _matches(item[1:] if negated else item, name, fold=fold):
            if negated:
                return False
            found = True
    return found


class SshConfig:
    """One or more ssh_config files (read in order, as OpenSSH reads them), parsed once."""

    def __init__(self, files: tuple[Path, ...], *, system: tuple[Path, ...] | None = None
                 ) -> None:
        """`files` in order; those in `system` (default: /etc/ssh/ssh_config) are system
        files, whose relative Includes are read from /etc/ssh; the others are the user's."""
        self.files = files
        system_files = {_SYSTEM_DIR / "ssh_config"} if system is None else set(system)
        self._events: list[_Event] = []
        for path in files:
            self._read(path, path in system_files, 0)
        self._by_name: dict[str, list[int]] = {}
        stops: list[int] = []
        for i, ev in enumerate(self._events):
            if ev.literal:
                for name in ev.args:
                    self._by_name.setdefault(name, []).append(i)
            elif ev.kind != "option":
                stops.append(i)
        self._stops = stops
        """Every line a look-up must look at whatever the name (all but literal Host lines
        and options)."""
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------
    def _read(self, path: Path, system: bool, depth: int) -> None:
        try:
            text = path.read_text()
        except OSError:
            return  # as OpenSSH: a config file that cannot be opened is skipped
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path}:{number}"
            split = _split(line, where)
            if split is None:
                continue
            key, args = split
            if key == "include":
                self._include(args, system, depth, where)
            elif key in ("host", "match"):
                if key == "match":
                    self._check_match(args, where)
                self._events.append(_Event(key, key, tuple(args), where))
            else:
                self._events.append(_Event("option", key, tuple(args), where))

    def _include(self, args: list[str], system: bool, depth: int, where: str) -> None:
        if depth >= MAX_INCLUDE_DEPTH:
            raise UserError(f"{where}: Include nested deeper than {MAX_INCLUDE_DEPTH} files",
                            hint="does an included file include itself?")
        for arg in args:
            if arg.startswith("~"):
                if system:
                    raise UserError(f"{where}: a system ssh_config cannot Include {arg}")
                full = str(Path(arg).expanduser())
            elif Path(arg).is_absolute():
                full = arg
            else:
                base = _SYSTEM_DIR if system else Path.home() / ".ssh"
                full = str(base / arg)
            for found in sorted(glob.glob(full)):  # noqa: PTH207 - glob(3), as OpenSSH
                self._events.append(_Event("enter", where=where))
                self._read(Path(found), system, depth + 1)
                self._events.append(_Event("leave", where=where))

    @staticmethod
    def _check_match(args: list[str], where: str) -> None:
        words = [a.lstrip("!").lower() for a in args]
        for bad in ("canonical", "final"):
            if bad in words:
                raise UserError(f"{where}: `Match {bad}` is not supported (it needs "
                                "OpenSSH's second pass over the config)",
                                hint="match on host or originalhost instead")
        if not words:
            raise UserError(f"{where}: Match needs a criterion (host, originalhost, user, "
                            "localuser, exec or all)")

    # -- look-up ---------------------------------------------------------------------------
    def lookup(self, name: str) -> Mapping[str, Any]:
        """The options that apply to `name` (lower-case keys; IdentityFile and the other
        list options as lists, the rest as text), cached per name."""
        found = self._cache.get(name)
        if found is not None:
            return found
        found = _Lookup(self, name).run()
        with self._lock:
            self._cache[name] = found
        return found


class _Lookup:
    """One pass over the events for one name, as readconf.c makes it."""

    def __init__(self, config: SshConfig, name: str) -> None:
        self.config, self.name = config, name
        self.options: dict[str, Any] = {}
        self.active = True
        self.never = False
        self.saved: list[tuple[bool, bool]] = []

    def run(self) -> dict[str, Any]:
        events, stops = self.config._events, self.config._stops
        mine = self.config._by_name.get(self.name, [])
        i = 0
        while i < len(events):
            ev = events[i]
            if ev.kind == "option":
                if self.active:
                    self.option(ev)
                i += 1
                continue
            if ev.literal and self.name not in ev.args:
                # inactive until the next line that may change that: jump there
                self.active = False
                nxt = [stops[k] for k in (bisect.bisect_right(stops, i),) if k < len(stops)]
                nxt += [mine[k] for k in (bisect.bisect_right(mine, i),) if k < len(mine)]
                i = min(nxt, default=len(events))
                continue
            self.header(ev)
            i += 1
        return self.options

    def header(self, ev: _Event) -> None:
        if ev.kind == "enter":
            self.saved.append((self.active, self.never))
            self.never = self.never or not self.active
        elif ev.kind == "leave":
            self.active, self.never = self.saved.pop()
        elif ev.kind == "host":
            self.active = not self.never and self.host(ev.args)
        else:
            self.active = not self.never and self.match(ev)

    def host(self, patterns: tuple[str, ...]) -> bool:
        return _match_any(self.name, patterns, fold=False)

    def match(self, ev: _Event) -> bool:
        args, result, i = list(ev.args), True, 0
        host = expand(self.options["hostname"], {"h": self.name}) \
            if "hostname" in self.options else self.name
        while i < len(args):
            word = args[i].lower()
            negate = word.startswith("!")
            word = word.lstrip("!")
            if word == "all":
                return result and not negate
            if i + 1 >= len(args):
                raise UserError(f"{ev.where}: Match {word} needs an argument")
            arg, i = args[i + 1], i + 2
            if word == "exec":
                if not result:
                    continue  # as OpenSSH: no command runs once the line cannot match
                hit = self.exec(arg, host)
            elif word in ("host", "originalhost"):
                hit = match_list(host if word == "host" else self.name, arg)
            elif word in ("user", "localuser"):
                who = getpass.getuser()
                hit = match_list(self.options.get("user", who) if word == "user" else who,
                                 arg, fold=False)
            else:
                raise UserError(f"{ev.where}: unsupported Match criterion {word!r}",
                                hint="netops reads host, originalhost, user, localuser, exec "
                                "and all")
            if hit == negate:
                result = False
        return result

    def exec(self, command: str, host: str) -> bool:
        tokens = _tokens(self.name, host, self.options)
        done = subprocess.run(["/bin/sh", "-c", expand(command, tokens)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False)
        return done.returncode == 0

    def option(self, ev: _Event) -> None:
        key, opts = ev.key, self.options
        if not ev.args:
            raise UserError(f"{ev.where}: {key} needs a value")
        if key in _LISTS:
            opts.setdefault(key, []).extend(ev.args)
        elif key in _PROXIES:
            if not any(p in opts for p in _PROXIES):
                opts[key] = " ".join(ev.args)
        elif key not in opts:
            opts[key] = " ".join(ev.args)


def _tokens(name: str, host: str, options: Mapping[str, Any]) -> dict[str, str]:
    local = socket.gethostname()
    return {"h": host, "n": name, "p": str(options.get("port", "22")),
            "r": str(options.get("user") or getpass.getuser()), "u": getpass.getuser(),
            "l": local, "L": local.split(".")[0], "d": str(Path.home()),
            "i": str(os.getuid()), "k": str(options.get("hostkeyalias") or name)}


def expand(text: str, tokens: Mapping[str, str]) -> str:
    """OpenSSH's percent_expand: `%x` from `tokens`, `%%` a percent; others kept as written."""
    return re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%"
                  else tokens.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where and how to connect to one host: the inventory over ssh_config over defaults."""

    name: str
    address: str
    port: int
    user: str
    key_files: tuple[str, ...]
    identities_only: bool
    proxy_jump: tuple[str, ...]
    """Jump hosts, first hop first ([user@]host[:port] each)."""
    proxy_command: str | None
    known_hosts_files: tuple[Path, ...]
    kex: tuple[str, ...]
    ciphers: tuple[str, ...]
    server_alive_interval: float = DEFAULT_ALIVE_INTERVAL
    """Seconds of silence before the peer is probed; 0 turns the probes off (as in OpenSSH)."""
    server_alive_count_max: int = DEFAULT_ALIVE_COUNT_MAX
    """Probes left unanswered before the connection is declared dead."""


SSH_ARG_OPTIONS = frozenset({
    "hostname", "port", "user", "identityfile", "identitiesonly", "proxyjump", "proxycommand",
    "serveraliveinterval", "serveralivecountmax", "userknownhostsfile", "globalknownhostsfile",
    "kexalgorithms", "ciphers"})
"""The `-o` options of ansible_ssh_common_args/extra_args that netops honours."""
SSH_ARG_NO_OPS = frozenset({"controlmaster", "controlpersist", "controlpath", "loglevel",
                            "compression"})
"""`-o` options accepted and ignored: connection sharing (netops keeps one connection per host
for the whole run), logging and compression change nothing a run does."""
_SSH_FLAGS = {"-J": "proxyjump", "-p": "port", "-i": "identityfile", "-l": "user"}


def ssh_args(text: str, host: str) -> dict[str, Any]:
    """The ssh command-line options of `ansible_ssh_common_args` / `ansible_ssh_extra_args`
    (`-o Key=Value`, `-o Key Value`, `-oKey=Value`, `-J`, `-p`, `-i`, `-l`), as ssh_config
    options (lower-case keys, the first value wins, IdentityFile accumulates).

    Raises:
        UserError: an option netops does not honour (named, with the host).
    """
    where = f"host {host!r}: ansible_ssh_common_args/ansible_ssh_extra_args"
    if "{{" in text or "{%" in text:
        raise UserError(f"{where}: {text[:80]!r} is a Jinja template, which netops does not "
                        "render in inventory variables", hint="write the value itself")
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise UserError(f"{where}: cannot split {text!r}: {e}") from None
    out: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word, i = words[i], i + 1
        flag, attached = word[:2], word[2:]
        if flag not in ("-o", *_SSH_FLAGS) or not word.startswith("-"):
            raise UserError(f"{where}: ssh option {word!r} is not supported",
                            hint="netops honours -o KEY=VALUE, -J, -p, -i and -l; put other "
                            "settings in an ssh_config file (netops_ssh_config)")
        if not attached:
            if i >= len(words):
                raise UserError(f"{where}: {word} needs a value")
            attached, i = words[i], i + 1
        if flag != "-o":
            key, value = _SSH_FLAGS[flag], attached
        else:
            key, value = _option(attached, where)
        if key in SSH_ARG_NO_OPS:
            continue
        if key == "identityfile":
            out.setdefault(key, []).append(value)
        elif key in _PROXIES:
            if not any(p in out for p in _PROXIES):
                out[key] = value
        else:
            out.setdefault(key, value)
    return out


def _option(text: str, where: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)$", text)
    if m is None or not m.group(2).strip():
        raise UserError(f"{where}: -o {text!r} is not KEY=VALUE")
    key = m.group(1).lower()
    if key == "stricthostkeychecking":
        raise UserError(f"{where}: ssh option -o {m.group(1)} is not supported per host",
                        hint="host keys are checked per run: --host-keys strict|accept-new|off")
    if key not in SSH_ARG_OPTIONS | SSH_ARG_NO_OPS:
        raise UserError(f"{where}: ssh option -o {m.group(1)} is not supported",
                        hint="netops honours -o with " + ", ".join(sorted(SSH_ARG_OPTIONS))
                        + "; put other settings in an ssh_config file (netops_ssh_config)")
    return key, m.group(2).strip()


def resolve(config: SshConfig, name: str, address: str, port: int | None, user: str | None,
            key_file: str | None, args: Mapping[str, Any] | None = None) -> Resolved:
    """The inventory's ansible_host/port/user/key win over its ssh arguments (`args`, from
    `ssh_args`), which win over ssh_config, as on Ansible's ssh command line."""
    conf = dict(config.lookup(name))
    for key, value in (args or {}).items():
        if key == "identityfile":
            conf[key] = [*value, *conf.get(key, [])]
            continue
        if key in _PROXIES:
            for p in _PROXIES:
                conf.pop(p, None)
        conf[key] = value
    jump = str(conf.get("proxyjump", "") or "")
    hostname = expand(str(conf["hostname"]), {"h": name}) if "hostname" in conf else name
    address = address if address != name else hostname
    port = port or _port(conf.get("port"), name)
    user = user or str(conf.get("user", "") or "") or getpass.getuser()
    tokens = {**_tokens(name, address, {**conf, "port": port, "user": user})}
    command = conf.get("proxycommand")
    return Resolved(
        name=name,
        address=address,
        port=port,
        user=user,
        key_files=tuple(dict.fromkeys(([key_file] if key_file else [])
                                      + [_path(f, tokens) for f in
                                         _as_list(conf.get("identityfile"))])),
        identities_only=str(conf.get("identitiesonly", "no")).lower() == "yes",
        proxy_jump=() if jump.lower() in ("", "none") else tuple(
            h.strip() for h in jump.split(",") if h.strip()),
        proxy_command=None if not command or str(command).lower() == "none"
        else expand(str(command), tokens),
        known_hosts_files=tuple(Path(_path(p, tokens)) for p in
                                _as_list(conf.get("userknownhostsfile"))
                                + _as_list(conf.get("globalknownhostsfile"))),
        kex=_algorithms(conf.get("kexalgorithms")),
        ciphers=_algorithms(conf.get("ciphers")),
        server_alive_interval=_number(conf.get("serveraliveinterval"), DEFAULT_ALIVE_INTERVAL),
        server_alive_count_max=max(1, int(_number(conf.get("serveralivecountmax"),
                                                  DEFAULT_ALIVE_COUNT_MAX))),
    )


def split_hop(hop: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (ProxyJump syntax; `[v6]:port` too) -> (user, host, port)."""
    user, _, rest = hop.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") else None
    elif rest.count(":") == 1:
        host, _, p = rest.partition(":")
        port = int(p)
    return user or None, host, port


def _port(value: Any, name: str) -> int:
    try:
        return int(str(value)) if value not in (None, "") else 22
    except ValueError:
        raise UserError(f"ssh_config: Port {value!r} for {name} is not a number") from None


def _path(text: str, tokens: Mapping[str, str]) -> str:
    """A file name from ssh_config: `%` tokens and `~` expanded, as OpenSSH does."""
    return str(Path(expand(text, tokens)).expanduser())


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return value.split()
    return [p for item in value for p in str(item).split()]


def _number(value: Any, default: float) -> float:
    """A non-negative number from ssh_config (the first value wins, as paramiko reads it);
    `default` when absent or unreadable."""
    try:
        found = float(str(value).split()[0]) if value not in (None, "") else default
    except (ValueError, IndexError):
        return default
    return found if found >= 0 else default


def _algorithms(value: Any) -> tuple[str, ...]:
    """An explicit algorithm list from ssh_config; '+', '-' and '^' edits are left to the
    defaults (they only add, remove or reorder around them)."""
    if not value or str(value)[0] in "+-^":
        return ()
    return tuple(a for a in str(value).split(",") if a)


class Resolver:
    """Where each host is (`resolve`): one parsed ssh_config per file (`--ssh-config`, else the
    inventory's `netops_ssh_config` for that host, else OpenSSH's default files), the answers
    cached per host. Shared by the early dialling (`dial`) and the SSH transport."""

    def __init__(self, ssh_config: Path | None = None) -> None:
        self.ssh_config_path = ssh_config
        self._configs: dict[Path | None, SshConfig] = {}
        self._resolved: dict[tuple[Any, ...], Resolved] = {}
        self._lock = threading.Lock()

    def ssh_config(self, host: Host) -> SshConfig:
        """One parsed ssh_config per file (the inventory may name one per host)."""
        path = self.ssh_config_path
        named = host.vars.get("netops_ssh_config")
        if path is None and isinstance(named, str):
            path = Path(named).expanduser()
        config = self._configs.get(path)
        if config is not None:
            return config
        with self._lock:
            if path not in self._configs:
                if path is not None and not path.is_file():
                    raise UserError(f"ssh config file {path} does not exist",
                                    hint="fix netops_ssh_config or --ssh-config")
                self._configs[path] = SshConfig((path,) if path else default_files())
            return self._configs[path]

    def check(self, host: Host) -> Resolved:
        """`resolve`, and the inventory's key file exists (before any host is touched)."""
        if host.key_file:
            key_path(host.key_file)
        return self.resolve(host)

    def resolve(self, host: Host) -> Resolved:
        """Address, port, user, keys and proxies of `host` (cached per host)."""
        key = (host.name, host.address, host.port, host.user, host.key_file,
               host.vars.get("netops_ssh_config"), host.ssh_args)
        found = self._resolved.get(key)
        if found is None:
            args = ssh_args(host.ssh_args, host.name) if host.ssh_args else None
            found = resolve(self.ssh_config(host), host.name, host.address, host.port,
                            host.user, host.key_file, args)
            self._resolved[key] = found
        return found


def key_path(path: str) -> Path:
    """A private key file's path, which must exist, be readable and look like a private key
    (PEM or OpenSSH's own format, all paramiko reads: the usual slip, a `.pub` file, is caught
    here, before paramiko is loaded and before any node is dialled)."""
    full = Path(path).expanduser()
    hint = "fix ansible_ssh_private_key_file or IdentityFile"
    if not full.is_file():
        raise UserError(f"private key file {path} does not exist", hint=hint)
    try:
        with full.open("rb") as f:
            first = f.readline(200).strip()
    except OSError as e:
        raise UserError(f"cannot read private key {path}: {e.strerror or e}", hint=hint) from e
    if not (first.startswith(b"-----BEGIN ") and first.endswith(b"PRIVATE KEY-----")):
        raise UserError(f"{path} is not a private key (its first line is not "
                        "'-----BEGIN ... PRIVATE KEY-----')", hint=hint)
    return full

