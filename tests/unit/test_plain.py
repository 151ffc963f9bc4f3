"""Output off a terminal without Rich: the same text Rich would show, markup read the same way;
and on either console, nothing from a node a terminal could act on (issue 14)."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.markup import render
from rich.table import Table

from netops.plain import PlainConsole, escape, safe, safe_console, stderr_console, strip, terminal

SAMPLES = [
    "plain text", "[bold]bold[/]", "[bold red]x[/] and [green]y[/green]", "node1: [green]ok[/]",
    "[preauth] sshd", "a [1] b", "\\[bold] literal", "\\\\[bold]two backslashes",
    "\\\\\\[bold]three", "ends with \\", "[@click=x]link[/]", "[#ff0000]hex[/]",
    "x [ y ] z", "[a=b c]tag with param[/a]", "  indented\ttabs  ", "ünïcode ✗ · !",
    "array[0] and dict['k']", "[[nested]]", "unclosed [bold text", "[]", "[ ]",
]


@pytest.mark.parametrize("markup", SAMPLES)
def test_strip_shows_what_rich_shows(markup: str) -> None:
    assert strip(markup) == render(markup).plain


def test_a_closing_tag_with_nothing_open_is_a_tag_too() -> None:
    """Rich raises on it; netops escapes node text, so only its own markup gets here."""
    assert strip("[/etc/x] c") == " c"
    assert strip(escape("[/etc/x] c")) == "[/etc/x] c"


@pytest.mark.parametrize("text", SAMPLES)
def test_escape_is_richs_and_round_trips(text: str) -> None:
    assert escape(text) == rich_escape(text)
    assert strip(escape(text)) == render(escape(text)).plain
    if not text.endswith("\\"):  # Rich keeps the backslash it adds after a trailing one
        assert strip(escape(text)) == text


def test_plain_console_writes_text_and_hands_tables_to_rich() -> None:
    out = io.StringIO()
    console = PlainConsole(out)
    console.print("[bold]batch 1:[/] n1, n2")
    console.print("[kept] as is", markup=False)
    table = Table("host", "status")
    table.add_row("n1", "ok")
    console.print(table)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["batch 1: n1, n2", "[kept] as is"]
    rich_out = io.StringIO()
    Console(file=rich_out, highlight=False, emoji=False).print(table)
    assert out.getvalue().endswith(rich_out.getvalue())
    assert not console.is_terminal and console.width == 80


def test_a_long_line_of_a_renderable_stays_one_line() -> None:
    from rich.text import Text

    out = io.StringIO()
    command = "kubectl drain chick11 --ignore-daemonsets --delete-emptydir-data " * 3
    PlainConsole(out).print(Text(f"      $ {command}", style="dim"))
    assert out.getvalue() == f"      $ {command}\n"


def test_plain_console_never_wraps_and_lines_do_not_interleave() -> None:
    out = io.StringIO()
    console = PlainConsole(out)
    long = "x" * 300
    threads = [threading.Thread(target=lambda: [console.print(long) for _ in range(200)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out.getvalue().splitlines() == [long] * 800


@pytest.mark.parametrize("env,tty,expected", [
    ({}, False, False), ({}, True, True), ({"TTY_COMPATIBLE": "1"}, False, True),
    ({"TTY_COMPATIBLE": "0"}, True, False), ({"FORCE_COLOR": "1"}, False, True),
    ({"FORCE_COLOR": ""}, True, False),
])
def test_terminal_follows_richs_rules(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                      tty: bool, expected: bool) -> None:
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert terminal(Stream()) is expected
    assert terminal(Stream()) is Console(file=Stream(), _environ=dict(env)).is_terminal


def test_stderr_console_is_richs_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    styled = stderr_console()
    assert isinstance(styled, Console) and styled.is_terminal
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert isinstance(stderr_console(), PlainConsole)


HOSTILE = [
    "\x1b]0;TITLE\x07\x1b[2J",            # OSC set-title (BEL-terminated), CSI erase screen
    "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink, ST-terminated
    "\x1bP1$r0m\x1b\\",                   # DCS
    "\x9b31mC1 CSI\x9d0;t\x07\x90dcs\x9c",  # C1 controls
    "rm -rf /\rls      ",                 # a carriage return overwriting what was shown
    "safe\x08\x08\x08\x08evil",            # backspaces
    "\x1b[1A\x1b[2K\x1bc\x7f\x00\x0e\x0f",  # cursor up, erase line, reset, DEL, NUL, SO/SI
    "abc\u202eevil\u202c \u2066iso\u2069",  # bidi override and isolate
]
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    shown = safe(text)
    assert not CONTROLS.search(shown), shown
    assert safe(shown) == shown  # idempotent: shown twice is shown the same
    assert shown.isprintable()


def test_safe_shows_controls_as_escapes_and_keeps_text_newlines_and_tabs() -> None:
    assert safe("\x1b[2J") == "\\x1b[2J"
    assert safe("a\rb\x07c\x08d\x9be") == "a\\rb\\ac\\bd\\x9be"
    assert safe("one\r\ntwo\tthree\n") == "one\ntwo\tthree\n"
    assert safe("\u202e") == "\\u202e"
    plain = "plain [bold]text[/] ünïcode ✗\n\tok"
    assert safe(plain) is plain


def test_safe_is_cheap_on_large_output() -> None:
    big = ("x" * 200 + "\n") * 5000      # 1 MB of ordinary output
    started = time.perf_counter()
    assert safe(big) is big
    dirty = ("x" * 100 + "\x1b[31m" + "\n") * 5000
    assert "\x1b" not in safe(dirty)
    assert time.perf_counter() - started < 1.0


def _no_foreign_escapes(written: str) -> None:
    """Only Rich's own SGR styling may put ESC in the output; no BEL, no C1, no other ESC."""
    rest = re.sub("\x1b\\[[0-9;]*m", "", written)
    assert not CONTROLS.search(rest.replace("\n", "")), repr(rest)


@pytest.mark.parametrize("text", HOSTILE)
def test_both_consoles_print_node_text_safely(text: str) -> None:
    from rich.text import Text

    plain = io.StringIO()
    PlainConsole(plain).print(f"n1: {text}", markup=False)
    PlainConsole(plain).print(f"[bold]n1[/]: {escape(text)}")
    table = Table("host", "output")
    table.add_row("n1", escape(text))
    table.add_row("n2", Text(text))
    PlainConsole(plain).print(table)
    _no_foreign_escapes(plain.getvalue())
    assert "\\x1b" in plain.getvalue() or "\\x9b" in plain.getvalue() or "\\r" in \
        plain.getvalue() or "\\b" in plain.getvalue() or "\\u202e" in plain.getvalue()

    styled = io.StringIO()
    console = safe_console(file=styled, force_terminal=True, color_system="truecolor",
                           highlight=False, emoji=False, width=200)
    console.print(f"n1: {text}", markup=False)
    console.print(f"[red]n1[/]: {escape(text)}")
    console.print(Text(text, style="red"))  # a Text built elsewhere: the segment net
    console.print(table)
    _no_foreign_escapes(styled.getvalue())
    assert "\x1b[31m" in styled.getvalue()  # Rich's own colours are still there
