"""A secret never leaves in any form netops (or a tool on the node) renders it (issue 14)."""

from __future__ import annotations

import difflib
import json
import shlex

import pytest

from netops.engine.result import Status
from netops.masking import MIN_FRAGMENT, secret_forms, short
from netops.runbook.render import render_command
from netops.steps import _command, check, file, shell, wait
from netops.steps.base import Expect, StepContext
from netops.transport.base import MASK, Command, Completed, mask

SECRETS = [
    "hunter2 with spaces",
    "it's",
    'say "hi"',
    "$HOME and $(id) `x`",
    "back\\slash\\",
    "line one\nline two\n\tindented three",
    "ünïcode ✗ pass",
    "both 'single' and \"double\"",
]


def renderings(value: str) -> list[str]:
    """The forms a value is shown in, inside other text."""
    inner_repr = repr("x'\"" + value)
    return [
        value, shlex.quote(value), f"echo {shlex.quote('pre ' + value + ' post')}",
        json.dumps(value), json.dumps({"stdout": f"a {value} b"}),
        json.dumps(value, ensure_ascii=False), repr(value), inner_repr, repr([value]),
        f"stdout {value!r}, expected 'x'", value.replace("'", "'\\''"),
        '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        .replace("`", "\\`") + '"',
    ]


def leaks(text: str, value: str) -> list[str]:
    """The pieces of `value` (whole, or a line of at least MIN_FRAGMENT chars) in `text`."""
    pieces = {value} | {ln.strip() for ln in value.splitlines() if len(ln.strip()) >= MIN_FRAGMENT}
    return [p for p in pieces if p in text]


@pytest.mark.parametrize("value", SECRETS)
def test_every_rendering_is_masked(value: str) -> None:
    secrets = frozenset({value})
    for shown in renderings(value):
        out = mask(shown, secrets)
        assert MASK in out, shown
        assert not leaks(out, value), (shown, out)
        for form in secret_forms(secrets):
            assert form not in out, (shown, out, form)


@pytest.mark.parametrize("value", SECRETS)
def test_a_unified_diff_is_masked_line_by_line(value: str) -> None:
    old = "user: admin\npassword: old\n"
    new = f"user: admin\npassword: {value}\nend\n"
    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "a", "b"))
    out = mask(diff, frozenset({value}))
    assert not leaks(out, value), out
    assert "user: admin" in out and "+end" in out
    assert not leaks(mask(json.dumps(diff), frozenset({value})), value)


def test_unrelated_text_is_untouched_and_nothing_is_masked_twice() -> None:
    assert mask("nothing here", frozenset({"s3cret!"})) == "nothing here"
    assert mask("a s3cret! b", frozenset()) == "a s3cret! b"
    assert mask("", frozenset({"x"})) == ""
    # one pass: a secret that looks like the mask does not grow it
    assert mask("p=**", frozenset({"**", "pw"})) == f"p={MASK}"
    assert mask("pwpw", frozenset({"pw", "pwpw"})) == MASK
    assert mask("x" + MASK, frozenset({"*"})) == "x" + MASK * 3


def test_short_secrets_are_masked_but_flagged_and_short_lines_are_not_masked_alone() -> None:
    assert short("ab") and not short("abcd") and not short("")
    assert mask("a b c", frozenset({"b"})) == f"a {MASK} c"
    # a one-character line of a multi-line secret does not mask every brace
    value = "{\n  \"token\": \"abcdef123\"\n}"
    out = mask("config { x }\n" + value, frozenset({value}))
    assert out == f"config {{ x }}\n{MASK}"
    assert mask("  \"token\": \"abcdef123\"", frozenset({value})) == MASK


def test_surrounding_whitespace_is_not_needed_to_mask() -> None:
    assert mask("got: tok-123456", frozenset({"tok-123456\n"})) == f"got: {MASK}"


def test_rendered_command_display_masks_the_quoted_secret() -> None:
    secrets = frozenset({"it's \"x\" $y"})
    r = render_command("login --password {{ pw }} --user bob", {"pw": "it's \"x\" $y"}, secrets)
    assert r.display == f"login --password {MASK} --user bob"
    assert Command(r.text, secrets).display == r.display


class Echo:
    """A transport whose commands print `out` and exit `rc`."""

    host = "n1"

    def __init__(self, out: str, rc: int = 1, err: str = "") -> None:
        self.out, self.rc, self.err = out, rc, err

    def run(self, cmd: Command, *, timeout: float | None = None,
            stdin: bytes | None = None) -> Completed:
        return Completed(self.rc, self.out, self.err, 0.0)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        raise AssertionError("no writes")

    def get(self, path: str) -> bytes:
        raise AssertionError("no reads")

    def close(self) -> None:
        pass


SECRET = "p@ss w'rd \"$HOME\" \\ end"


def ctx(transport: Echo, dry_run: bool = False) -> StepContext:
    return StepContext(transport=transport, dry_run=dry_run, timeout=None, become=False,
                       secrets=frozenset({SECRET}))


@pytest.mark.parametrize("expect", [Expect(), Expect(rc=None, stdout="other"),
                                    Expect(rc=None, stdout_regex="^nope$")])
def test_a_failing_check_reports_no_secret(expect: Expect) -> None:
    out = "a" * 50 + SECRET + "\n"  # the note's quote of stdout is cut inside the secret
    o = check.run(check.Args(command=f"echo {shlex.quote(SECRET)}", expect=expect, fail=True),
                  ctx(Echo(out, err=f"err {SECRET}")))
    assert o.status is Status.FAILED and o.finding
    shown = json.dumps([o.command, o.stdout, o.stderr, o.note, repr(o)])
    for piece in (SECRET, SECRET[:5], json.dumps(SECRET)[1:-1], "w'rd"):
        assert piece not in shown, piece
    assert MASK in o.stdout and MASK in o.stderr


def test_a_check_that_holds_only_once_masked_still_fails_without_quoting_it() -> None:
    o = check.run(check.Args(command="true", expect=Expect(rc=None, stdout=MASK), fail=True),
                  ctx(Echo(SECRET, rc=0)))
    assert o.status is Status.FAILED and o.note == _command.HIDDEN


def test_shell_and_wait_mask_their_output() -> None:
    o = shell.run(shell.Args(command="x"), ctx(Echo(SECRET, rc=0)))  # mutates: false
    assert o.stdout == MASK
    w = wait.run(wait.Args(check="x", timeout_s=1, interval_s=1),
                 ctx(Echo(f"now {SECRET}", rc=1), dry_run=True))
    assert SECRET not in w.stdout + w.note and "rc 1" in w.note


def test_a_file_diff_in_a_dry_run_masks_a_multi_line_secret() -> None:
    secret = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n0ZLp'q\"$x\\\n-----END KEY-----"

    class Probe(Echo):
        def run(self, cmd: Command, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Completed:
            return Completed(0, "0600\nold\n", "", 0.0)

    c = StepContext(transport=Probe(""), dry_run=True, timeout=None, become=False,
                    secrets=frozenset({secret}))
    o = file.run(file.Args(path="/etc/key.pem", content=f"key:\n{secret}\n", mode="0600"), c)
    assert o.status is Status.WOULD_CHANGE
    assert "+key:" in o.diff and "-old" in o.diff
    text = json.dumps([o.diff, o.note, o.command]) + o.diff
    for line in secret.splitlines():
        assert line not in text, line
