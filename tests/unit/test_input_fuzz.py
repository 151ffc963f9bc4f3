"""No traceback for any input file: hostile and mangled runbooks, inventories and schedules end in
a netops error (exit 2), in bounded time and memory.

The fuzz part mutates the files netops ships (runbooks/, inventory.yaml, schedules.yaml, the
inventory fixtures) with a seeded generator, so a failure replays exactly: its message names
the seed file, the case number and the mutations. `NETOPS_FUZZ_CASES` (default 10 per seed
file) turns it up. The CLI part runs the named hostile files through `python3 -m netops`.
"""

from __future__ import annotations

import codecs
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from random import Random
from types import FrameType

import pytest

from netops.errors import NetopsError, UserError
from netops.inventory.load import load_inventory
from netops.runbook.load import find_runbooks, load_runbook
from netops.runbook.model import Runbook
from netops.schedule import load_schedules, validate
from netops.yamlfile import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"
CASES = int(os.environ.get("NETOPS_FUZZ_CASES", "10"))
CASE_SECONDS = 2.0

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


# -- the seed files and how each is loaded ---------------------------------------------------------
def _seeds() -> list[tuple[str, Path, Path]]:
    """(kind, file to mutate, file to load): inventories' vars files load via their inventory."""
    seeds = [("runbook", f, f) for f in sorted((ROOT / "netops" / "runbooks").glob("*.yaml"))]
    seeds += [("inventory", ROOT / "inventory.yaml", ROOT / "inventory.yaml"),
              ("schedules", ROOT / "schedules.yaml", ROOT / "schedules.yaml")]
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        mains = sorted(f for f in folder.iterdir() if f.is_file())
        seeds += [("inventory", f, f) for f in mains]
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.parent != folder:
                seeds.append(("inventory", f, mains[0]))
    return seeds


SEEDS = _seeds()


def _find_runbook(name: str) -> Runbook:
    if name.endswith((".yaml", ".yml")):
        return load_runbook(Path(name))
    books = find_runbooks([ROOT / "netops" / "runbooks"])
    if name not in books:
        raise UserError(f"no runbook named {name!r}")
    return load_runbook(books[name])


def _load(kind: str, path: Path) -> None:
    if kind == "runbook":
        load_runbook(path)
    elif kind == "inventory":
        load_inventory(path)
    else:
        validate(load_schedules(path), _find_runbook, load_inventory(ROOT / "inventory.yaml"))


# -- mutations: bytes -> bytes, each with a description for the failure message ------------------
Mutation = Callable[[Random, bytes], tuple[bytes, str]]
TAGS = ["!!python/name:os.system ", "!!python/object/apply:os.system ", "!foo ", "!!binary ",
        "!!timestamp ", "!!int ", "!!float ", "!!set ", "!!omap ", "!!pairs ", "!unsafe ",
        "!vault ", "!!str ", "!!map ", "!!seq ", "!!null ", "!!bool ", "!!merge ", "! ",
        "!<tag:yaml.org,2002:python/none> ", "!!python/object:netops.errors.UserError "]
VALUES = ["2024-13-45", "2024-02-30 25:61:61", "1" * 5000, "0x", "1e400", "-.inf", ".nan", "~",
          "{{ ", "{% for x in y %}", "{{ " + "(" * 400 + "1" + ")" * 400 + " }}", "'", '"\\x"',
          "*undefined", "&a", "<<: *a", "[" * 120 + "]" * 120, "- " * 150 + "x",
          "[" * 6000 + "]" * 6000, "? " * 20, "|", ">-\n  a", "@", "`", "%", "!!binary zz==",
          "99 * * * *", "0", "-1", "true", "null", "'" + "x" * 200_000 + "'",
          "h[1:99999999999]", "h[a:z:0]", "'\U0001F600\u2028\u202e'", "\ufeff", "\xa0"]
CONTROL = ["\0", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x80", "\x9b",
           "\x85", "\u2028", "\ud800"]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def flip(rng: Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data or b"\0")
    spots = [rng.randrange(len(out)) for _ in range(rng.randint(1, 5))]
    for i in spots:
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out), f"flip bits at {spots}"


def truncate(rng: Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data) + 1)
    return data[:at], f"truncate at {at}"


def control(rng: Random, data: bytes) -> tuple[bytes, str]:
    char, at = rng.choice(CONTROL), rng.randrange(len(data) + 1)
    raw = char.encode("utf-8", "surrogatepass")
    return data[:at] + raw + data[at:], f"insert {char!r} at {at}"


def tag(rng: Random, data: bytes) -> tuple[bytes, str]:
    lines = _lines(data)
    i, t = rng.randrange(len(lines)), rng.choice(TAGS)
    line = lines[i]
    at = line.find(b": ") + 2 if b": " in line else len(line) - len(line.lstrip())
    lines[i] = line[:at] + t.encode() + line[at:]
    return b"".join(lines), f"tag {t!r} on line {i + 1}"


def value(rng: Random, data: bytes) -> tuple[bytes, str]:
    lines = _lines(data)
    i, v = rng.randrange(len(lines)), rng.choice(VALUES)
    line = lines[i]
    if b": " in line:
        lines[i] = line[:line.find(b": ") + 2] + v.encode("utf-8", "surrogatepass") + b"\n"
    else:
        lines[i] = line.rstrip(b"\r\n") + v.encode("utf-8", "surrogatepass") + b"\n"
    return b"".join(lines), f"value {v[:30]!r} on line {i + 1}"


def bomb(rng: Random, data: bytes) -> tuple[bytes, str]:
    how = rng.randrange(4)
    if how == 0:
        return data + b"\n" + BOMB.encode(), "alias bomb appended"
    lines = _lines(data)
    i = rng.randrange(len(lines))
    indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
    if how == 1:  # the bomb as a nested mapping at this line's indentation
        block = b"".join(indent + ln.encode() + b"\n" for ln in BOMB.splitlines())
        return b"".join([*lines[:i], block, *lines[i:]]), f"alias bomb at line {i + 1}"
    if how == 2:
        rec = rng.choice([b"x: &r [*r]\n", b"x: &r {k: *r}\n", b"&r x: *r\n",
                          b"x: &r\n  - a\n  - *r\n", b"<<: &r {<<: *r}\n"])
        return b"".join([*lines[:i], indent + rec, *lines[i:]]), f"recursive alias {rec!r}"
    return b"".join([*lines[:i], indent + b"x: *nowhere\n", *lines[i:]]), "undefined alias"


def encoding(rng: Random, data: bytes) -> tuple[bytes, str]:
    text = data.decode("utf-8", "replace") + "# caf\u00e9 \u2603\n"
    name = rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "latin-1",
                       "cp1252", "utf-8-sig", "mac-roman"])
    out = text.encode(name, "replace")
    if rng.random() < 0.3 and name.startswith("utf-16"):
        out = codecs.BOM_UTF16_LE + out
    return out, f"encoded as {name}"


def lines_op(rng: Random, data: bytes) -> tuple[bytes, str]:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    op = rng.choice(["duplicate", "delete", "swap", "indent", "dedent", "block"])
    if op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "delete":
        del lines[i]
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "indent":
        lines[i] = b" " * rng.randint(1, 5) + lines[i]
    elif op == "dedent":
        lines[i] = lines[i].lstrip(b" ")
    else:
        lo, hi = sorted((i, j))
        lines[hi:hi] = lines[lo:hi + 1]
    return b"".join(lines), f"{op} line {i + 1} ({j + 1})"


def noise(rng: Random, data: bytes) -> tuple[bytes, str]:
    at, n = rng.randrange(len(data) + 1), rng.randint(1, 64)
    junk = bytes(rng.randrange(256) for _ in range(n))
    return data[:at] + junk + data[at + rng.randint(0, n):], f"{n} random bytes at {at}"


MUTATIONS: list[Mutation] = [flip, truncate, control, tag, value, bomb, encoding, lines_op,
                             noise]


def _mutate(rng: Random, data: bytes) -> tuple[bytes, list[str]]:
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data, what = rng.choice(MUTATIONS)(rng, data)
        done.append(what)
    return data, done


# -- running one case -----------------------------------------------------------------------------
class _Slow(BaseException):
    """Raised by the alarm: the case ran longer than CASE_SECONDS."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def ring(signum: int, frame: FrameType | None) -> None:
        raise _Slow()

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _check(kind: str, load: Path, label: str) -> str | None:
    """None when loading ends well (loaded, or a netops error); else what went wrong."""
    started = time.monotonic()
    try:
        with _deadline(CASE_SECONDS):
            _load(kind, load)
    except _Slow:
        return f"{label}: took over {CASE_SECONDS}s"
    except NetopsError as e:
        if not str(e).strip():
            return f"{label}: {type(e).__name__} with no message"
    except BaseException as e:  # the point: nothing else may escape
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-4:])
        return f"{label}: {type(e).__name__}: {str(e)[:200]}\n{tb}"
    took = time.monotonic() - started
    return f"{label}: took {took:.2f}s" if took > CASE_SECONDS else None


@pytest.mark.parametrize(("kind", "seed", "load"), SEEDS,
                         ids=[str(s.relative_to(ROOT)) for _, s, _ in SEEDS])
def test_mutated_files_end_in_netops_errors(tmp_path: Path, kind: str, seed: Path,
                                            load: Path) -> None:
    # work on a copy: an inventory's fixture directory, or the file alone
    if seed.is_relative_to(FIXTURES):
        folder = FIXTURES / seed.relative_to(FIXTURES).parts[0]
        shutil.copytree(folder, tmp_path / folder.name)
        target = tmp_path / folder.name / seed.relative_to(folder)
        loaded = tmp_path / folder.name / load.relative_to(folder)
    else:
        target = loaded = tmp_path / seed.name
    original = seed.read_bytes()
    failures = []
    for case in range(CASES):
        rng = Random(zlib.crc32(f"{seed.relative_to(ROOT)}#{case}".encode()))
        data, done = _mutate(rng, original)
        target.write_bytes(data)
        problem = _check(kind, loaded, f"{seed.relative_to(ROOT)} case {case} ({'; '.join(done)})")
        if problem:
            failures.append(problem)
    target.write_bytes(original)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("kind", ["runbook", "inventory", "schedules"])
@pytest.mark.parametrize("content", [
    pytest.param(b"a: '" + b"x" * (MAX_BYTES + 1) + b"'\n", id="over-the-size-cap"),
    pytest.param(b"a: '" + b"x" * 3_000_000 + b"'\n", id="huge-scalar"),
    pytest.param(b"[" * 40_000 + b"]" * 40_000, id="flow-nesting-past-the-c-stack"),
    pytest.param(b"- " * 40_000 + b"x\n", id="block-nesting-past-the-c-stack"),
    pytest.param(b"x: " + b"[" * 101 + b"]" * 101 + b"\n", id="nesting-past-the-limit"),
    pytest.param(b"\xef\xbb\xbf\xef\xbb\xbf", id="two-utf8-boms"),
    pytest.param(b"\xff\xfe\x00\x00a\x00\x00\x00", id="utf32-bom"),
    pytest.param(b"a: b\r\nc: d\re: \xc2\x85f\xe2\x80\xa8\n", id="mixed-line-breaks"),
])
def test_named_hostile_files(tmp_path: Path, kind: str, content: bytes) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    problem = _check(kind, path, f"{kind} {path.name}")
    assert problem is None, problem


def test_a_directory_or_missing_file_is_a_user_error(tmp_path: Path) -> None:
    for kind in ("runbook", "inventory", "schedules"):
        for path in (tmp_path, tmp_path / "missing.yaml"):
            with pytest.raises(UserError):
                _load(kind, path)


def test_an_unreadable_file_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file; reading /proc/self/mem from 0 fails (EIO)
        path = Path("/proc/self/mem")
    for kind in ("runbook", "inventory", "schedules"):
        with pytest.raises(UserError, match="cannot read"):
            _load(kind, path)


# -- the CLI: exit 2 and a message, no traceback --------------------------------------------------
HOSTILE = {
    "alias-bomb": (BOMB.encode(), "alias bomb"),
    "bad-utf8": (b"name: demo\ndescription: caf\xe9\n", "byte 0xe9 at byte offset 27"),
    "python-tag": (b"name: !!python/name:os.system demo\n",
                   "unknown tag '!!python/name:os.system'"),
    "nul": (b"name: demo\x00\n", "NUL byte at byte offset 10"),
}
COMMANDS = {
    "validate": ["validate", "{f}"],
    "show": ["show", "{f}"],
    "run-dry-run": ["-i", "{inv}", "run", "{f}", "--dry-run"],
    "inventory": ["-i", "{f}", "inventory"],
    "schedule-check": ["-i", "{inv}", "schedule", "check", "--schedules", "{f}"],
}
MAX_RSS_KB = 100 * 1024


def _limit_memory() -> None:  # the safety net; the assertion below is on the measured RSS
    resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(HOSTILE))
def test_cli_refuses_hostile_files_with_exit_2(tmp_path: Path, case: str, command: str) -> None:
    content, expected = HOSTILE[case]
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    args = [a.format(f=path, inv=ROOT / "inventory.yaml") for a in COMMANDS[command]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETOPS_")}
    env |= {"XDG_STATE_HOME": str(tmp_path / "state"), "NETOPS_JOURNAL": str(tmp_path / "j.db"),
            "COLUMNS": "200"}
    started = time.monotonic()
    with open(tmp_path / "output", "wb") as output:
        proc = subprocess.Popen([sys.executable, "-m", "netops", *args], cwd=tmp_path, env=env,
                                stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, preexec_fn=_limit_memory)
        timer = threading.Timer(30, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # wait4: this child's own peak RSS
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    text = (tmp_path / "output").read_text("utf-8", "replace")
    assert proc.returncode == 2, text
    assert "Traceback" not in text, text
    assert expected in text, text
    assert str(path) in text, text
    if case == "alias-bomb":
        assert wall < 10, f"took {wall:.1f}s"
        assert usage.ru_maxrss < MAX_RSS_KB, f"peak RSS {usage.ru_maxrss} kB"
        assert usage.ru_utime + usage.ru_stime < 1.0, "over a second of CPU"
