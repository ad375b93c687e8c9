"""Transient failures, and retrying them with exponential backoff.

A nightly refresh meets dropped connections, a server restarting, a serialization failure. Those
pass if tried again a moment later; a wrong password, a missing table or a refused gate do not,
and retrying them only delays the message. ``is_transient`` tells the two apart from the
driver's SQLSTATE, and ``with_retries`` re-runs a whole step (a read of the source, a publish:
both start from scratch, so a second attempt is safe).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
import sqlalchemy as sa

from synth_assets.errors import TransientError

log = logging.getLogger("prodtwin")
T = TypeVar("T")

# connection_exception (08...), serialization_failure, deadlock_detected, admin_shutdown,
# crash_shutdown, cannot_connect_now, too_many_connections, lock_not_available (a lock timeout)
TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "57P01", "57P02", "57P03", "53300", "55P03")
# libpq messages of a failed connection that waiting will not fix
PERMANENT_MESSAGES = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "could not translate host name",
    "name or service not known",
    "invalid connection option",
    "invalid dsn",
)


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all, waiting ``delay`` seconds, then ``delay * factor``, ..."""

    attempts: int = 3
    delay: float = 1.0
    factor: float = 2.0


DEFAULT_BACKOFF = Backoff()


def _driver_error(error: BaseException) -> BaseException:
    return error.orig if isinstance(error, sa.exc.DBAPIError) and error.orig else error


def is_transient(error: BaseException) -> bool:
    """A dropped connection, a server restart or a serialization failure; not bad input."""
    error = _driver_error(error)
    if isinstance(error, TransientError):
        return True
    text = str(error).lower()
    if isinstance(error, psycopg.Error):
        state = error.sqlstate or ""
        if state:
            return state.startswith(TRANSIENT_SQLSTATES)
        # no SQLSTATE: libpq lost or could not open the connection
        return isinstance(error, psycopg.OperationalError) and not any(
            m in text for m in PERMANENT_MESSAGES
        )
    mysql_codes = {2003, 2006, 2013, 1205, 1213}  # gone away, lost, lock timeout, deadlock
    code = getattr(error, "args", (None,))[0] if type(error).__module__.startswith("pymysql") else 0
    return code in mysql_codes


def with_retries(
    what: str,
    step: Callable[[], T],
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``step``; on a transient failure wait and run it again, up to ``backoff.attempts``."""
    delay = backoff.delay
    for attempt in range(1, backoff.attempts + 1):
        try:
            return step()
        except Exception as error:
            if attempt >= backoff.attempts or not is_transient(error):
                raise
            # the driver's message is not logged: it may quote a connection string
            log.warning(
                "%s: transient failure (%s), attempt %d of %d in %.1f s",
                what,
                type(_driver_error(error)).__name__,
                attempt + 1,
                backoff.attempts,
                delay,
            )
            sleep(delay)
            delay *= backoff.factor
    raise AssertionError("unreachable")
