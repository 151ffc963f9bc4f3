"""Output off a terminal without Rich: the same text Rich would show, markup read the same way."""

from __future__ import annotations

import io
import threading

import pytest
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.markup import render
from rich.table import Table

from netops.plain import PlainConsole, escape, stderr_console, strip, terminal

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
