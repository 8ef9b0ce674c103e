"""actions.cleanup.streamed: each tenant's text reaches the stream in order, from one process or
from workers, through the spool or, where it cannot be used, through the pool's pipe."""

from __future__ import annotations

import io

import pytest

from wa_sessions.actions.cleanup import streamed
from wa_sessions.results import Outcome, TenantState
from wa_sessions.spool import Piece, Spool

COMPANIES = [f"{index:03d}" for index in range(80)]


class _Stream:
    """A stream that renders a tenant as its company, and records how each text came."""

    def __init__(self, spool_fails: bool = False, put_fails: bool = False):
        self.out = io.StringIO()
        self.ways: list[str] = []
        self._spool_fails, self._put_fails = spool_fails, put_fails

    def render(self, outcome: Outcome) -> str:
        return f"<{outcome.before.company}>"

    def write(self, text: str) -> None:
        self.ways.append("pipe")
        self.out.write(text)

    def spool(self) -> Spool:
        if self._spool_fails:
            raise OSError(28, "No space left on device")
        spool = Spool("utf-8", "strict")
        if self._put_fails:
            spool.put = _full  # type: ignore[method-assign]
        return spool

    def write_piece(self, spool: Spool, piece: Piece) -> None:
        self.ways.append("spool")
        spool.copy_to(piece, self.out)


def _full(text: str) -> Piece:
    raise OSError(28, "No space left on device")


def _outcome(company: str) -> Outcome:
    return Outcome(TenantState(company, f"/r/{company}"), "cleanup", True)


@pytest.mark.parametrize(
    ("jobs", "spool_fails", "put_fails", "way"),
    [
        (1, False, False, "pipe"),
        (2, False, False, "spool"),
        (2, True, False, "pipe"),
        (2, False, True, "pipe"),
    ],
)
def test_every_text_reaches_the_stream_in_order(
    jobs: int, spool_fails: bool, put_fails: bool, way: str
) -> None:
    stream = _Stream(spool_fails, put_fails)
    outcomes = list(streamed(_outcome, COMPANIES, jobs, stream))
    assert [outcome.before.company for outcome in outcomes] == COMPANIES
    assert stream.out.getvalue() == "".join(f"<{company}>" for company in COMPANIES)
    assert set(stream.ways) == {way}  # with one job the stream's own write, not a spool
