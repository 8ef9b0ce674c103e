"""A lock in Redis: `SET <key> <token> NX PX <ttl>`, renewed by a thread every third of its time to
live while held, released only with its token. A holder that dies lets it expire; a holder that
lost it (expired while the server was away, or taken over) finds out at its next renewal, and its
compare-and-delete (which names the token) deletes nothing more at once. Tenant locks and
multitenant-cleanup's run lock are both this lock.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from wa_sessions.locks import LockBusy, LockUnsafe
from wa_sessions.stores.redis_wire import wire_name

if TYPE_CHECKING:
    import redis

_POLL_SECONDS = 0.05


class LockRenewal:
    """A thread renewing a held lock (`renew`: the renewal script) every third of its time to
    live; `lost` once the lock was found not ours any more."""

    def __init__(self, renew: Callable[..., Any], lock_key: bytes, token: str, ttl_ms: int):
        self.renew, self.lock_key, self.token, self.ttl_ms = renew, lock_key, token, ttl_ms
        self.stop = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name="wa-sessions-lock-renewal", daemon=True)

    def _run(self) -> None:
        import redis

        while not self.stop.wait(self.ttl_ms / 3000):
            try:
                renewed = self.renew(keys=[self.lock_key], args=[self.token, self.ttl_ms])
            except redis.RedisError:
                continue  # the server may be back before the lock expires
            if not renewed:
                self.lost = True
                return


@contextlib.contextmanager
def held_lock(
    client: redis.Redis,
    scripts: dict[str, Any],
    lock_key: str,
    *,
    wait_seconds: float,
    ttl_ms: int,
    reason: Callable[[Exception], str],
) -> Iterator[LockRenewal]:
    """Hold `lock_key` (waiting up to `wait_seconds`), renewed while held; yield its renewal (its
    token, and whether it was lost). Raise LockBusy when another holder has it, LockUnsafe when
    the server cannot be asked (`reason` words the error without the password)."""
    import redis

    token = secrets.token_hex(16)
    deadline = time.monotonic() + wait_seconds
    wire = wire_name(lock_key)
    try:
        while not client.set(wire, token, nx=True, px=ttl_ms):
            if time.monotonic() >= deadline:
                raise LockBusy(f"{lock_key} is held by another run")
            time.sleep(_POLL_SECONDS)
    except redis.RedisError as error:
        raise LockUnsafe(f"cannot take {lock_key}: {reason(error)}") from None
    renewal = LockRenewal(scripts["renew"], wire, token, ttl_ms)
    renewal.thread.start()
    try:
        yield renewal
    finally:
        renewal.stop.set()
        renewal.thread.join()
        with contextlib.suppress(redis.RedisError):
            scripts["release"](keys=[wire], args=[token])
