"""The one way netops reads a file it is given: runbooks, inventories (YAML or INI, and their
group_vars/ and host_vars/) and schedules.yaml. Whatever the bytes, the reader ends in text or
in a `UserError` naming the file and the position; never in a traceback.

`read_text` takes bytes to text: at most `MAX_BYTES`, UTF-8 only (a UTF-8 byte order mark is
dropped; UTF-16/32, NUL bytes and invalid UTF-8 are refused, naming the byte offset), and none of
the control characters YAML forbids. `YamlFile` composes that text into nodes (LibYAML's C
composer when PyYAML has it, see `yamlnodes.py`) with positions kept, and refuses before any
value is built:

- nesting deeper than `MAX_DEPTH` (the C composer recurses: ~30 000 levels crash the process,
  so files that could nest that deep are measured on the parser's event stream first);
- aliases that expand the document by more than `MAX_ALIAS_NODES` nodes (a "billion laughs"
  bomb of 342 bytes expands to 387 million) and aliases that contain their own anchor;
- tags the caller has no constructor for (`!!python/name:...`, `!foo`), a tag on the wrong kind
  of node (`!!map 10s`), and `!!int`/`!!float`/`!!bool`/`!!timestamp` on a value that is not
  one (PyYAML's constructors crash on those in odd ways).

Building values from the nodes stays with the callers (`runbook/load.py`, schedules through it,
and `inventory/yaml_inventory.py`); they turn the ValueErrors a value can still raise
(`2024-13-45`, a 5000-digit number) into errors at its position.

Every error is a `LoadError` at file:line:col, with the line quoted (clipped around the column)
and a caret under the column.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from netops.errors import LoadError, SourceSpan, UserError
from netops.yamlnodes import LOADER
from netops.yamlnodes import compose as _compose

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100
MAX_ALIAS_NODES = 100_000
# Below this many '[', '{', '-', ':' and '?' a document cannot nest deep enough to exhaust the C
# composer's stack, so it is composed straight away (each level needs one of them).
_SAFE_INDICATORS = 5_000
_QUOTE_WIDTH = 160

# PyYAML's reader refuses these (yaml/reader.py NON_PRINTABLE); INI files get the same rule.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD"
                            "\U00010000-\U0010FFFF]")
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_STD_PREFIX = "tag:yaml.org,2002:"


def constructor_tags(constructor: type[yaml.constructor.BaseConstructor]) -> frozenset[str]:
    """The tags `constructor` builds values for, and the merge key `<<`."""
    return frozenset({*(str(t) for t in constructor.yaml_constructors if t is not None),
                      _STD_PREFIX + "merge"})


SAFE_TAGS = constructor_tags(yaml.constructor.SafeConstructor)
# What a scalar tagged !!int, !!float, !!bool or !!timestamp must look like: the patterns YAML
# resolves untagged scalars by (PyYAML's constructors fail in odd ways on anything else).
_TYPED: dict[str, list[re.Pattern[str]]] = {}
for _resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.values():
    for _tag, _pattern in _resolvers:
        if _tag.rsplit(":", 1)[-1] in ("int", "float", "bool", "timestamp"):
            _TYPED.setdefault(_tag, [])
            if _pattern not in _TYPED[_tag]:
                _TYPED[_tag].append(_pattern)


# -- bytes to text --------------------------------------------------------------------------------
def read_text(path: Path, what: str, hint: str = "") -> str:
    """The text of `path` (`what` names it in errors: "runbook", "inventory", ...).

    Raises:
        UserError: it cannot be read (missing, a directory, no permission).
        LoadError: too large, not UTF-8, binary, or holding control characters.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}", hint=hint) from None
    if len(data) > MAX_BYTES:
        raise LoadError(f"the file is larger than {MAX_BYTES // 2**20} MiB, the most netops "
                        f"reads for a {what}", SourceSpan(path, 1, 1),
                        "is it the right file? split it, or move large values out of it")
    return decode(path, data, what)


def decode(path: Path, data: bytes, what: str = "file") -> str:
    """UTF-8 `data` as text (see `read_text`), or a LoadError at the offending byte."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise LoadError(f"the file is {name} encoded (byte order mark at byte offset 0); "
                            "netops reads UTF-8", SourceSpan(path, 1, 1),
                            f"convert it: iconv -f {name} -t UTF-8 FILE > FILE.utf8")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
        skipped = len(codecs.BOM_UTF8)
    else:
        skipped = 0
    nul = data.find(b"\0")
    if nul >= 0:
        head = data[:64]
        utf16 = len(head) >= 4 and (head[1::2].count(0) >= len(head[1::2]) // 2
                                    or head[0::2].count(0) >= len(head[0::2]) // 2)
        why = ("it looks UTF-16 encoded without a byte order mark; netops reads UTF-8"
               if utf16 else "is it a binary file?")
        raise LoadError(f"NUL byte at byte offset {nul + skipped}: {why}",
                        _byte_span(path, data, nul),
                        "convert it: iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8" if utf16 else "")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LoadError(f"not valid UTF-8: byte 0x{data[e.start]:02x} at byte offset "
                        f"{e.start + skipped} ({e.reason})", _byte_span(path, data, e.start),
                        "netops reads UTF-8: convert the file, e.g. iconv -f LATIN1 -t UTF-8"
                        ) from None
    bad = _NON_PRINTABLE.search(text)
    if bad:
        offset = len(text[:bad.start()].encode("utf-8")) + skipped
        raise LoadError(f"control character U+{ord(bad.group()):04X} at byte offset {offset} "
                        "is not allowed", _char_span(path, text, bad.start()),
                        "remove it (a binary file, or a copy-paste accident?)")
    return text


def _byte_span(path: Path, data: bytes, offset: int) -> SourceSpan:
    start = data.rfind(b"\n", 0, offset) + 1
    col = len(data[start:offset].decode("utf-8", "replace")) + 1
    return SourceSpan(path, data.count(b"\n", 0, offset) + 1, col)


def _char_span(path: Path, text: str, index: int) -> SourceSpan:
    return SourceSpan(path, text.count("\n", 0, index) + 1,
                      index - (text.rfind("\n", 0, index) + 1) + 1)


def quote(lines: list[str], line: int, col: int | None = None) -> str:
    """`\\n  NNNN | text` of 1-based `line` (clipped around `col` when long), plus a caret
    line under `col` when given; "" for a line the file does not have."""
    if not 0 < line <= len(lines):
        return ""
    text, at = lines[line - 1], (col or 1) - 1
    if len(text) > _QUOTE_WIDTH:
        start = max(0, min(at - _QUOTE_WIDTH // 2, len(text) - _QUOTE_WIDTH))
        shown = text[start:start + _QUOTE_WIDTH]
        prefix = "..." if start else ""
        text = prefix + shown + ("..." if start + _QUOTE_WIDTH < len(text) else "")
        at = at - start + len(prefix)
    number = f"{line:>4}"
    out = f"\n  {number} | {text}"
    return out if col is None else out + f"\n  {' ' * len(number)} | {' ' * at}^"


# -- text to nodes --------------------------------------------------------------------------------
class _Limit(yaml.MarkedYAMLError):
    """A document beyond what netops composes (too deep)."""

    def __init__(self, problem: str, mark: Any) -> None:  # a Python or a LibYAML mark
        super().__init__()
        self.problem, self.problem_mark = problem, mark


def compose(text: str) -> yaml.Node | None:
    """The document's nodes (None for an empty one), never nesting deeper than `MAX_DEPTH`;
    raises `yaml.YAMLError`. Aliases are not checked: see `YamlFile`."""
    if sum(text.count(c) for c in "[{-:?") > _SAFE_INDICATORS:
        depth = 0
        for event in yaml.parse(text, Loader=LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Limit(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    return _compose(text)


class YamlFile:
    """One YAML file as a checked node tree (`root`), and errors that point into it.

    `tags` are the tags the caller can construct (default: PyYAML's safe ones); any other is
    refused where it is written.
    """

    def __init__(self, path: Path, text: str, tags: Collection[str] = SAFE_TAGS) -> None:
        self.path, self.lines = path, text.splitlines()
        try:
            self.root = compose(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            what = " ".join(str(x) for x in (e.context, e.problem) if x)
            if isinstance(e, _Limit):
                raise self.error(mark, what) from None
            raise self.error(mark, f"invalid YAML: {what}",
                             "check the indentation and quoting near this position") from None
        except yaml.reader.ReaderError as e:  # control characters: `decode` refuses them first
            span = _char_span(path, text, max(0, min(e.position, len(text))))
            raise self.at(span.line, span.col, f"invalid YAML: {e.reason}") from None
        except yaml.YAMLError as e:
            raise self.error(None, f"invalid YAML: {e}") from None
        if self.root is not None:
            self._check(self.root, frozenset(tags))

    def error(self, mark: yaml.Mark | None, message: str, hint: str = "") -> LoadError:
        """A LoadError at a YAML mark (the file's start when None)."""
        if mark is None:
            return LoadError(message, SourceSpan(self.path, 1, 1), hint)
        return self.at(mark.line + 1, mark.column + 1, message, hint)

    def at(self, line: int, col: int, message: str, hint: str = "") -> LoadError:
        """A LoadError at 1-based line and column, the line quoted with a caret."""
        return LoadError(message + quote(self.lines, line, col),
                         SourceSpan(self.path, line, col), hint)

    def _check(self, root: yaml.Node, tags: frozenset[str]) -> None:
        """Tags, depth and alias expansion, in one pass that visits each node once.

        Collections are walked depth first, without recursion; scalars are checked where
        their collection is (each counts 1 node, and an alias to one adds 1).
        """
        if isinstance(root, yaml.ScalarNode):
            self._check_tag(root, tags)
            return
        plain = tags & _PLAIN_TAGS  # scalar tags that need no more than being known
        sizes = _Sizes()
        open_: set[int] = set()  # collections being walked (an alias to one is a loop)
        stack: list[tuple[yaml.Node, bool, int]] = [(root, False, 1)]
        while stack:
            node, done, level = stack.pop()
            key = id(node)
            if done:
                open_.discard(key)
                sizes.close(self, node)
                continue
            if key in sizes.size:
                continue
            if level > MAX_DEPTH:
                raise self.error(node.start_mark, f"nested deeper than {MAX_DEPTH} levels")
            if key in open_:
                raise self.error(node.start_mark, "an alias inside this value refers back to "
                                 "it, so the value would contain itself",
                                 "remove the recursive alias")
            self._check_tag(node, tags)
            open_.add(key)
            stack.append((node, True, level))
            for kid in reversed(_children(node)):
                if not isinstance(kid, yaml.ScalarNode):
                    stack.append((kid, False, level + 1))
                    continue
                if level >= MAX_DEPTH:
                    raise self.error(kid.start_mark, f"nested deeper than {MAX_DEPTH} levels")
                if kid.tag not in plain:
                    self._check_tag(kid, tags)

    def _check_tag(self, node: yaml.Node, tags: frozenset[str]) -> None:
        """A tag the caller constructs, on the kind of node it is for, and for !!int, !!float,
        !!bool and !!timestamp a value that looks like one."""
        tag = str(node.tag)
        if tag not in tags:
            raise self.error(node.start_mark, f"unknown tag {_shown(tag)!r}",
                             "netops reads plain YAML: remove the tag")
        kind = _KIND_OF_TAG.get(tag[len(_STD_PREFIX):], yaml.ScalarNode) \
            if tag.startswith(_STD_PREFIX) else type(node)
        if not isinstance(node, kind):
            raise self.error(node.start_mark, f"the tag {_shown(tag)!r} does not fit "
                             f"{_KIND_NAME[type(node)]}", "remove the tag")
        if tag in _TYPED and isinstance(node, yaml.ScalarNode) \
                and not any(p.match(node.value) for p in _TYPED[tag]):
            raise self.error(node.start_mark, f"{str(node.value)[:40]!r} is not a valid "
                             f"{_shown(tag)}", "remove the tag, or fix the value")


class _Sizes:
    """What each collection expands to (nodes, and levels below it), aliases followed; and
    `added`, what the aliases add to the document's own nodes."""

    def __init__(self) -> None:
        self.size: dict[int, int] = {}
        self.height: dict[int, int] = {}
        self.referenced: set[int] = set()
        self.added = 0

    def close(self, doc: YamlFile, node: yaml.Node) -> None:
        """Measure `node`, whose child collections are measured already."""
        total, below = 1, 0
        for kid in _children(node):
            if isinstance(kid, yaml.ScalarNode):
                total, below = total + 1, max(below, 1)
                continue
            k = id(kid)
            total += self.size[k]
            below = max(below, self.height[k])
            if k in self.referenced:  # a second reference: an alias, expanded again
                self.added += self.size[k]
                if self.added > MAX_ALIAS_NODES:
                    raise doc.error(node.start_mark, "aliases expand the document beyond "
                                    f"{MAX_ALIAS_NODES} nodes (an alias bomb?)",
                                    "repeat the values instead of nesting aliases")
            self.referenced.add(k)
        self.size[id(node)], self.height[id(node)] = total, below + 1
        if below + 1 > MAX_DEPTH:  # through aliases
            raise doc.error(node.start_mark, f"nested deeper than {MAX_DEPTH} levels")


_PLAIN_TAGS = frozenset(_STD_PREFIX + t for t in ("str", "null", "merge"))
_KIND_OF_TAG = {"map": yaml.MappingNode, "set": yaml.MappingNode, "seq": yaml.SequenceNode,
                "omap": yaml.SequenceNode, "pairs": yaml.SequenceNode}
_KIND_NAME = {yaml.ScalarNode: "a scalar", yaml.MappingNode: "a mapping",
              yaml.SequenceNode: "a list"}


def _shown(tag: str) -> str:
    return "!!" + tag[len(_STD_PREFIX):] if tag.startswith(_STD_PREFIX) else tag


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
