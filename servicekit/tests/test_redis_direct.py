"""servicekit.redis_direct against the real Redis: replies, a dropped connection, threads, scripts, forks."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import redis
from django.conf import settings

from servicekit import redis_direct


@pytest.fixture
def client() -> redis.Redis:
    location = settings.CACHES["default"]["LOCATION"]
    assert isinstance(location, str) and location.startswith("redis://"), "these tests need the real Redis"
    return redis.Redis.from_url(location, socket_timeout=1)


@pytest.fixture
def key(client: redis.Redis) -> str:
    name = f"test-redis-direct:{uuid.uuid4().hex}"
    yield name
    client.delete(name)


def test_a_command_returns_its_reply_once_applied(client: redis.Redis, key: str) -> None:
    assert redis_direct.execute(client, "INCR", key) == 1
    assert redis_direct.execute(client, "INCRBY", key, 4) == 5
    assert int(client.get(key)) == 5  # applied before the call returned


def test_a_connection_the_server_dropped_is_made_again_and_the_command_sent_once_more(
    client: redis.Redis, key: str
) -> None:
    redis_direct.execute(client, "INCR", key)
    own = redis_direct.thread_connection(client)
    local_port = own._sock.getsockname()[1]
    (entry,) = [c for c in client.client_list() if c["addr"].endswith(f":{local_port}")]
    client.client_kill_filter(_id=entry["id"])
    assert redis_direct.execute(client, "INCR", key) == 2


def test_an_error_reply_is_raised(client: redis.Redis, key: str) -> None:
    client.set(key, "not a number")
    with pytest.raises(redis.exceptions.ResponseError):
        redis_direct.execute(client, "INCR", key)
    assert redis_direct.execute(client, "GET", key) == b"not a number"  # the connection is still in step


def test_each_thread_uses_a_connection_of_its_own(client: redis.Redis, key: str) -> None:
    seen: list[object] = []

    def work() -> None:
        seen.append(redis_direct.thread_connection(client))
        for _ in range(100):
            redis_direct.execute(client, "INCR", key)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(connection) for connection in seen}) == 4
    assert int(client.get(key)) == 400  # no reply read by another thread


def test_a_script_unknown_to_the_server_is_loaded_and_run(client: redis.Redis, key: str) -> None:
    script = f"return redis.call('INCRBY', KEYS[1], ARGV[1]) -- {uuid.uuid4().hex}"
    assert redis_direct.evalsha(client, script, keys=[key], args=[3]) == 3
    assert redis_direct.evalsha(client, script, keys=[key], args=[3]) == 6
    client.script_flush()
    assert redis_direct.evalsha(client, script, keys=[key], args=[1]) == 7


def test_a_forked_child_makes_its_own_connection(client: redis.Redis, key: str) -> None:
    parent = redis_direct.thread_connection(client)
    redis_direct.execute(client, "INCR", key)
    pid = os.fork()
    if pid == 0:  # the child: must not speak on the parent's socket
        try:
            ok = redis_direct.thread_connection(client) is not parent and redis_direct.execute(client, "INCR", key) == 2
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert redis_direct.execute(client, "INCR", key) == 3  # the parent's connection still in step
