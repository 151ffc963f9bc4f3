"""Every form a secret value can take in netops' output, and one pattern that masks them all.

A secret (`secret: true` param) reaches what netops shows or stores in more shapes than its raw
text: shell-quoted in a rendered command (`it's` becomes `'it'"'"'s'`), JSON-escaped by a tool
on the node (`kubectl -o json`), Python-repr'd in a check's note (`stdout 'x', expected ...`),
and, when it spans lines, one line at a time in a file's diff (`+line`). `secret_forms` lists
them once per set of secrets; `netops.transport.base.mask` replaces each by `***`.

Policy for short values: a secret's whole value is masked in every form however short it is (a
leak is worse than garbled output), but a *fragment* of a secret (one line of a multi-line
value, or the value with surrounding whitespace stripped) is masked on its own only from
`MIN_FRAGMENT` characters: a one-character line such as `}` must not mask every brace of every
output. `short(value)` says when a secret is so short that masking it will garble unrelated
text, for the caller to warn (without naming the value).
"""

from __future__ import annotations

import json
import re
import shlex
from functools import lru_cache

MIN_FRAGMENT = 4
"""Fragments of a secret (a line, the stripped value) shorter than this are not masked alone."""

MIN_SECRET = 4
"""A secret shorter than this is still masked everywhere, but `short` flags it for a warning."""

_SHELL_DQ = re.compile(r'([\\$`"])')
_HTML_SAFE = re.compile("[<>&']")


def short(value: str) -> bool:
    """Whether a secret is short enough that masking it garbles unrelated output."""
    return 0 < len(value) < MIN_SECRET


def encodings(value: str) -> set[str]:
    """`value` as it may appear in text: raw, shell-quoted (inside a word too), JSON- and
    repr-escaped, escaped for a double-quoted shell word."""
    forms = {value, shlex.quote(value),
             value.replace("'", "'\"'\"'"),   # shlex.quote's inside of a longer quoted word
             value.replace("'", "'\\''"),     # bash's (`set -x`, `printf %q`-like) quoting
             _SHELL_DQ.sub(r"\\\1", value),   # inside "..." in a shell command
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.add(_HTML_SAFE.sub(lambda m: f"\\u{ord(m.group()):04x}",
                             json.dumps(value)[1:-1]))  # Jinja's `tojson`
    r = repr(value)
    forms.add(r[1:-1])
    if r[0] == '"':  # `it's` alone reprs as "it's"; inside a string holding `"` too, as 'it\'s'
        forms.add(r[1:-1].replace("'", "\\'"))
    forms.discard("")
    return forms


@lru_cache(maxsize=64)
def secret_forms(secrets: frozenset[str]) -> frozenset[str]:
    """Every string to mask for `secrets` (raw values): each value's `encodings`, and those of
    its fragments (lines, stripped value) of at least `MIN_FRAGMENT` characters, so that a
    multi-line secret is masked line by line in a diff or a `first line` summary."""
    forms: set[str] = set()
    for value in secrets:
        if not value:
            continue
        forms |= encodings(value)
        lines = value.splitlines()
        fragments = {value.strip(), *lines, *(line.strip() for line in lines)}
        for fragment in fragments - {value}:
            if len(fragment) >= MIN_FRAGMENT:
                forms |= encodings(fragment)
    return frozenset(forms)


@lru_cache(maxsize=64)
def _compiled(secrets: frozenset[str]) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    forms = sorted(secret_forms(secrets), key=lambda f: (-len(f), f))
    if not forms:
        return (), None
    # one pass, longest form first at each position: a masked form is never re-matched (a
    # secret `**` does not grow the `***` of another)
    return tuple(forms), re.compile("|".join(map(re.escape, forms)))


def mask_forms(text: str, secrets: frozenset[str], replacement: str) -> str:
    """`text` with every form of every secret replaced by `replacement`."""
    if not secrets or not text:
        return text
    forms, pattern = _compiled(secrets)
    if pattern is None or not any(f in text for f in forms):  # substring scans run in C
        return text
    return pattern.sub(replacement, text)
