"""Redis commands on a connection the calling thread keeps: the vote's own round trips.

A vote makes two Redis calls: the token bucket (``servicekit.ratelimit``, ``EVALSHA``) before it and
the results generation (``INCR``) after its commit. redis-py's command path (pool checkout with a
readiness poll, the retry wrapper, response callbacks) costs ~80 us of CPU per command; a command sent
on a connection this thread keeps costs ~20 us (measured, docs/performance.md)::

    from servicekit import redis_direct
    redis_direct.execute(client, "INCR", key)
    redis_direct.evalsha(client, script, keys=[key], args=[interval, burst])

The connection is made from the client's pool settings (address, database, credentials, TLS, timeouts),
one per thread and pool, and made again in a forked child. The reply is read before returning, so the
command has happened when the call returns. Replies are raw RESP values (no response callbacks).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

_own = threading.local()
#: Connections a thread keeps at most (one per client's pool: the cache's and the rate limiter's in a service).
MAX_POOLS = 4


def thread_connection(client: Any) -> Any:
    """This thread's own connection to ``client``'s server (made on first use)."""
    pool = client.connection_pool
    held: dict[int, tuple[Any, int, Any]] = getattr(_own, "held", None) or {}
    _own.held = held
    entry = held.get(id(pool))
    if entry is None or entry[0] is not pool or entry[1] != os.getpid():
        if entry is not None:
            entry[2].disconnect()  # a pool that went away, or a parent's socket after a fork
        if len(held) >= MAX_POOLS:  # clients made and dropped (settings changed): keep no socket of theirs
            for _, _, stale in held.values():
                stale.disconnect()
            held.clear()
        entry = held[id(pool)] = (pool, os.getpid(), pool.connection_class(**pool.connection_kwargs))
    return entry[2]


def execute(client: Any, *command: Any) -> Any:
    """Send ``command`` on this thread's own connection to ``client``'s server and return the reply.

    After a broken connection (the server restarted, or closed it while idle) it reconnects and sends once
    more, so use it for commands whose repetition is harmless (an increment that only invalidates twice, a
    token spent twice); a second failure is raised (``redis.exceptions.ConnectionError``). A timeout is
    raised at once (``redis.exceptions.TimeoutError``): a slow server costs one timeout, not two, and the
    connection is dropped so that a late reply is never read as the next command's. Error replies are
    raised as ``redis.exceptions.ResponseError`` and its kinds."""
    connection = thread_connection(client)
    packed = connection.pack_command(*command)
    try:
        try:
            connection.send_packed_command(packed, check_health=False)
            return connection.read_response()
        except RedisConnectionError:
            connection.disconnect()
            connection.send_packed_command(packed, check_health=False)
            return connection.read_response()
    except (RedisConnectionError, RedisTimeoutError):
        connection.disconnect()
        raise


def script_sha(script: str) -> str:
    """The SHA1 Redis names ``script`` by (``EVALSHA``)."""
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


def evalsha(client: Any, script: str, *, keys: Sequence[str], args: Sequence[Any], sha: str | None = None) -> Any:
    """Run the Lua ``script`` by its SHA1, loading it first when the server does not know it (a restart
    or ``SCRIPT FLUSH``)."""
    sha = sha or script_sha(script)
    try:
        return execute(client, "EVALSHA", sha, len(keys), *keys, *args)
    except NoScriptError:
        execute(client, "SCRIPT", "LOAD", script)
        return execute(client, "EVALSHA", sha, len(keys), *keys, *args)
