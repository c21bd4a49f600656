"""The simulator's oracle: what the tests said about a pair's two completions, read from the database by pair id.

The volunteers' screen never shows it. Texts are kept only as digests (enough to tell which completion the API
showed on which side), so a large crowd's cache stays small; a pair is read once however many vote on it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from feedback.models import Completion, Pair

PASSED = Completion.Outcome.PASSED
FAILED = Completion.FAILED_OUTCOMES


class OracleError(RuntimeError):
    """The API showed a pair this database does not hold as shown (another server's database?)."""


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


@dataclass(frozen=True)
class PairFacts:
    pair_id: int
    a_digest: bytes
    b_digest: bytes
    a_outcome: str
    b_outcome: str
    a_length: int
    b_length: int

    @property
    def truth(self) -> str | None:
        """ "a" or "b" when exactly one completion passed and the other's tests ran and failed; else None."""
        a_passed, b_passed = self.a_outcome == PASSED, self.b_outcome == PASSED
        if a_passed and self.b_outcome in FAILED:
            return "a"
        if b_passed and self.a_outcome in FAILED:
            return "b"
        return None

    @property
    def honest(self) -> str:
        """An honest judge's vote in terms of completions: the truth, else tie (both passed) or both_bad."""
        if self.truth is not None:
            return self.truth
        return "tie" if self.a_outcome == PASSED and self.b_outcome == PASSED else "both_bad"

    def left_is_a(self, left: str, right: str) -> bool:
        """Which completion the API showed on the left, found by comparing the shown texts with the stored ones."""
        shown = digest(left), digest(right)
        if shown == (self.a_digest, self.b_digest):
            return True
        if shown == (self.b_digest, self.a_digest):
            return False
        raise OracleError(f"pair {self.pair_id}: the texts shown are not its completions in this database")

    def longer(self) -> str | None:
        """ "a" or "b", the completion with the longer text; None when they are as long."""
        if self.a_length == self.b_length:
            return None
        return "a" if self.a_length > self.b_length else "b"


def _facts(row: tuple) -> PairFacts:
    pair_id, a_text, b_text, a_outcome, b_outcome = row
    return PairFacts(pair_id, digest(a_text), digest(b_text), a_outcome, b_outcome, len(a_text), len(b_text))


def pair_facts(pair_ids: Iterable[int]) -> dict[int, PairFacts]:
    rows = Pair.objects.filter(pk__in=list(pair_ids)).values_list(
        "pk", "completion_a__text", "completion_b__text", "completion_a__outcome", "completion_b__outcome"
    )
    return {row[0]: _facts(row) for row in rows.iterator(chunk_size=2000)}


class Oracle:
    """Facts per pair id, read on first sight and kept (thread-safe: volunteers may run in threads)."""

    def __init__(self) -> None:
        self._facts: dict[int, PairFacts] = {}
        self._lock = threading.Lock()

    def facts(self, pair_id: int) -> PairFacts:
        with self._lock:
            known = self._facts.get(pair_id)
        if known is not None:
            return known
        found = pair_facts([pair_id]).get(pair_id)
        if found is None:
            raise OracleError(f"pair {pair_id} is not in this database: does the server use the same one?")
        with self._lock:
            self._facts[pair_id] = found
        return found
