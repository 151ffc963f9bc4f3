"""Output off a terminal (CI logs, cron mail, pipes), without loading Rich.

On a terminal netops shows Rich's live tables and colours. Anywhere else there is nothing to
style, and importing Rich costs ~15 ms of CPU, most of a run's start-up after its connections
have begun. `PlainConsole` takes the calls netops makes of Rich's `Console` (`print` with
Rich markup, `is_terminal`, `width`, `file`), writes the text with the markup taken out, and
hands anything that is not text (a table) to a real Rich console, built on first need.

`strip` reads markup exactly as Rich does: a tag is `[` + a letter, `#`, `/` or `@` + `]`;
a backslash before it makes it text; `escape` is Rich's own escaping, so that text from a node
shows as it is either way.

`safe` neutralises what node output could do to a terminal (or to a log later `cat` on one):
every control character but newline and tab, C1 controls and bidi overrides become visible
escapes (`\x1b`, `\r`, `\x9b`, `\u202e`). Both consoles apply it to every string they print
(`PlainConsole.print`, and `render_str` of the Rich console `stderr_console` builds), and
the Rich one again to every text segment it writes: an escape sequence from a node reaches the
terminal as text whatever path it took.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from functools import cache
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from rich.console import Console
    from rich.segment import Segment
    from rich.text import Text

_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
"""Rich's RE_TAGS: a markup tag and the backslashes before it."""
_ESCAPE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What a terminal may act on: C0 controls but \\t and \\n, DEL, C1 controls (\\x9b is CSI on
its own), and the bidi embeddings/overrides/isolates that reorder what is shown."""
_NAMED = {"\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\0": "\\0", "\x07": "\\a"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """`text` with every character a terminal could act on shown as an escape (`\\x1b[2J` for
    ESC [2J, `\\r` for a carriage return, `\\x9b` for a C1 CSI); newlines and tabs stay,
    and a CRLF line end is a plain newline. Idempotent, and the text unchanged (the same
    object) when there is nothing to neutralise."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_visible, text.replace("\r\n", "\n"))


def terminal(stream: IO[str]) -> bool:
    """Whether Rich would style `stream`: its TTY_COMPATIBLE and FORCE_COLOR rules, then
    isatty."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    if "FORCE_COLOR" in os.environ:
        return os.environ["FORCE_COLOR"] != ""
    try:
        return stream.isatty()
    except ValueError:  # closed
        return False


class Out(Protocol):
    """What netops uses of a console: Rich's `Console` on a terminal, `PlainConsole` off it."""

    @property
    def is_terminal(self) -> bool: ...

    @property
    def width(self) -> int: ...

    @property
    def file(self) -> IO[str]: ...

    def print(self, *objects: Any, markup: bool | None = None,
              highlight: bool | None = None, soft_wrap: bool | None = None) -> None: ...


def escape(text: str) -> str:
    """Rich's `rich.markup.escape`: `text` shows as it is, brackets included."""
    def backslash(match: re.Match[str]) -> str:
        slashes, tag = match.groups()
        return f"{slashes}{slashes}\\{tag}"

    text = _ESCAPE.sub(backslash, text)
    if text.endswith("\\") and not text.endswith("\\\\"):
        return text + "\\"
    return text


def strip(markup: str) -> str:
    """The text Rich would show for `markup`, without its style tags."""
    out: list[str] = []
    position = 0
    for match in _TAG.finditer(markup):
        full, slashes, _ = match.groups()
        start, end = match.span()
        out.append(markup[position:start])
        position = end
        if slashes:
            pairs, escaped = divmod(len(slashes), 2)
            out.append("\\" * pairs)
            if escaped:
                out.append(full[len(slashes):])  # an escaped tag is text
    out.append(markup[position:])
    return "".join(out)


def stderr_console() -> Out:
    """The console for what a person reads (stderr; stdout is `--json`'s): Rich's on a
    terminal, a `PlainConsole` elsewhere."""
    if terminal(sys.stderr):
        # emoji=False: node output is shown as it is (":ok:" in a stderr line stays text)
        return safe_console(stderr=True, highlight=False, emoji=False)
    return PlainConsole()


def safe_console(**options: Any) -> Console:
    """A Rich `Console(**options)` that passes every string it prints or lays out (a table
    cell) through `safe`, and every text segment it writes too (a `Text` built elsewhere)."""
    return _safe_console_class()(**options)


@cache
def _safe_console_class() -> type[Console]:
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        def render_str(self, text: str, **options: Any) -> Text:
            return super().render_str(safe(text), **options)

        def render(self, renderable: Any, options: Any = None) -> Iterator[Segment]:
            # the last net: every text segment Rich lays out (a `Text` built elsewhere, a
            # table cell), but not the cursor moves of a live view (`control` segments);
            # nested renderables come through here again, and `safe` is idempotent
            for segment in super().render(renderable, options):
                text, style, control = segment
                yield segment if control or not _UNSAFE.search(text) \
                    else Segment(safe(text), style, control)

    return SafeConsole


class PlainConsole:
    """Rich's `Console(stderr=True)` for a file that is not a terminal: text as it is, one
    `write` per `print` (lines from worker threads never interleave), no wrapping (a log is
    read with grep, not at 80 columns)."""

    is_terminal = False
    width = 80
    """Rich's width for a file that is not a terminal (what folding decisions compare with)."""

    def __init__(self, file: IO[str] | None = None) -> None:
        self._file = file
        self._lock = threading.Lock()
        self._rich: Console | None = None

    @property
    def file(self) -> IO[str]:
        return self._file if self._file is not None else sys.stderr

    def print(self, *objects: Any, markup: bool | None = None,
              highlight: bool | None = None, soft_wrap: bool | None = None) -> None:
        if not all(isinstance(o, str) for o in objects):
            # soft wrap: a long line (a command in a dry run's preview) stays one line
            self._renderer().print(*objects, markup=markup, highlight=highlight,
                                   soft_wrap=True if soft_wrap is None else soft_wrap)
            return
        text = " ".join(objects)
        if markup is not False:
            text = strip(text)
        text = safe(text)
        with self._lock:
            self.file.write(text + "\n")
            self.file.flush()

    def _renderer(self) -> Console:
        """A Rich console for what only Rich can lay out (tables, previews)."""
        if self._rich is None:
            where: dict[str, Any] = {"file": self._file} if self._file else {"stderr": True}
            self._rich = safe_console(**where, highlight=False, emoji=False)
        return self._rich


Cell = str | tuple[str, str]
"""A table cell: its text, or (text, Rich style) for a terminal."""


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Cell]], *,
                title: str | None = None, file: IO[str] | None = None) -> None:
    """An answer table on stdout (or `file`): Rich's on a terminal; elsewhere one line per
    row under a header row (no title), plain columns aligned with two spaces, nothing cut or
    wrapped (`| grep`, `| awk`, `| cat` see every cell): an empty cell is `-`, a multi-line
    cell is joined with `; `.
    Every cell is made `safe` (a cell may hold text from a node)."""
    out = file if file is not None else sys.stdout
    rows = list(rows)
    texts = [[c if isinstance(c, str) else c[0] for c in row] for row in rows]
    if terminal(out):
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title)
        for col in columns:
            table.add_column(col)
        for row, text in zip(rows, texts, strict=True):
            table.add_row(*(Text(safe(t), style="" if isinstance(c, str) else c[1])
                            for c, t in zip(row, text, strict=True)))
        safe_console(file=out, highlight=False, emoji=False).print(table)
        return
    cells = [list(columns)] + [["; ".join(t.splitlines()) or "-"
                                for t in row] for row in texts]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    out.write(safe("".join(line + "\n" for line in lines)))
    out.flush()
