"""A run's output pipes: read until the run is over or its deadline, keeping head and tail of each stream."""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from training.sandbox.limits import EXIT_GRACE_SECONDS

REPORT_LIMIT = 4096  # the report is one short line; anything longer is not the harness's


class Capture:
    """The first and last ``limit`` bytes of a stream; the middle is counted and dropped."""

    def __init__(self, limit: int):
        self.limit = max(limit, 0)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]

    def text(self, note: str = "") -> str:
        """The capture decoded, at most ``limit`` bytes of it with ``note`` appended, the middle marked if cut."""
        note_bytes = note.encode()[: self.limit]
        budget = self.limit - len(note_bytes)
        if self.total <= budget:
            data = bytes(self.head) + bytes(self.tail)
        else:
            keep = max(budget - len(f"\n[... {self.total} bytes dropped ...]\n"), 0)
            head = bytes(self.head[: keep - keep // 2])
            rest = bytes(self.head[len(head) :]) + bytes(self.tail)  # a gap may sit inside; the end is exact
            tail = rest[len(rest) - keep // 2 :] if keep // 2 else b""
            data = head + f"\n[... {self.total - len(head) - len(tail)} bytes dropped ...]\n".encode() + tail
        # PostgreSQL text cannot hold NUL; the output is for people to read.
        return (data + note_bytes).decode("utf-8", "replace").replace("\x00", "\N{REPLACEMENT CHARACTER}")


@dataclass
class Ran:
    """What one launch left behind, for the verdict."""

    returncode: int | None
    timed_out: bool
    stdout: Capture
    stderr: Capture
    report: Capture
    cgroup_version: int = 0  # the cgroup the run was in (0: none), and what its limits did
    cgroup_events: dict = field(default_factory=dict)

    @classmethod
    def start(cls, output_limit: int, report_limit: int = REPORT_LIMIT) -> Ran:
        return cls(None, False, Capture(output_limit), Capture(output_limit), Capture(report_limit))


def exited(pid: int) -> bool:
    """Whether the child exited, without reaping it: its pid and group stay ours to signal."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def supervise(
    streams: dict[int, Capture],
    deadline: float,
    *,
    done_fd: int,
    on_done: Callable[[], None],
    poll_done: Callable[[], bool] | None = None,
) -> tuple[bool, set[int]]:
    """Read the pipes until they close and the run is over, or the deadline. Returns (timed out, open fds).

    The run is over when ``done_fd`` turns readable (``on_done`` then reads it), or, where there is no such fd
    (a kernel without pidfd), when ``poll_done()`` says so.
    """
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    if done_fd >= 0:
        selector.register(done_fd, selectors.EVENT_READ)
    open_fds = set(streams)
    done_at: float | None = None
    timed_out = False
    try:
        while open_fds or done_at is None:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            wait = deadline - now
            if done_at is not None:
                if now >= done_at + EXIT_GRACE_SECONDS:
                    break  # something the program started still holds its output open
                wait = min(wait, done_at + EXIT_GRACE_SECONDS - now)
            if done_fd < 0:
                wait = min(wait, 0.02)
            for key, _ in selector.select(wait):
                if key.fd == done_fd:
                    selector.unregister(done_fd)
                    on_done()
                    done_at = time.monotonic()
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    streams[key.fd].add(chunk)
                else:
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
            if done_fd < 0 and done_at is None and poll_done is not None and poll_done():
                done_at = time.monotonic()
    finally:
        selector.close()
    return timed_out, open_fds


def drain(streams: dict[int, Capture], fds: set[int], seconds: float) -> None:
    """After the kill: what the dying processes still wrote, for a bounded time."""
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        end = time.monotonic() + seconds
        while selector.get_map() and time.monotonic() < end:
            for key, _ in selector.select(max(end - time.monotonic(), 0)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    streams[key.fd].add(chunk)
                else:
                    selector.unregister(key.fd)
