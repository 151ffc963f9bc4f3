"""Bounded output: what is kept of a command's stream, however much it prints (issue 14).

A step that prints 200 MB must not cost the controller 200 MB per host: each stream keeps its
first `HEAD_BYTES` and last `TAIL_BYTES` (the start says what the command did, the end how it
ended), counts what was cut between them, and marks the cut in the text. Shared by the SSH and
local transports (no paramiko import here: the local transport must stay light).
"""

from __future__ import annotations

from collections import deque

HEAD_BYTES = 256 * 1024
TAIL_BYTES = 768 * 1024
"""What is kept of each output stream of one command: its first and last bytes (1 MiB)."""


class Bounded:
    """The first `head` and the last `tail` bytes of a stream, and the count of those cut."""

    __slots__ = ("_head", "_head_max", "_tail", "_tail_len", "_tail_max", "cut")

    def __init__(self, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> None:
        self._head = bytearray()
        self._head_max = head
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self._tail_max = tail
        self.cut = 0

    def feed(self, data: bytes) -> None:
        if not data:
            return
        room = self._head_max - len(self._head)
        if room > 0:
            self._head += data[:room]
            if len(data) <= room:
                return
            data = data[room:]
        self._tail.append(data)
        self._tail_len += len(data)
        excess = self._tail_len - self._tail_max
        while excess > 0:
            first = self._tail[0]
            if len(first) <= excess:
                self._tail.popleft()
                dropped = len(first)
            else:
                self._tail[0] = first[excess:]
                dropped = excess
            self._tail_len -= dropped
            self.cut += dropped
            excess -= dropped

    def text(self) -> str:
        tail = b"".join(self._tail)
        if not self.cut:
            return (bytes(self._head) + tail).decode("utf-8", "replace")
        skip = 0  # start the tail on a character, not inside one
        while skip < min(3, len(tail)) and 0x80 <= tail[skip] < 0xC0:
            skip += 1
        return (self._head.decode("utf-8", "replace")
                + f"\n[... {self.cut + skip} bytes cut ...]\n"
                + tail[skip:].decode("utf-8", "replace"))
