"""The shared test helpers say what the service suites rely on (``servicekit.testing``)."""

from __future__ import annotations

from servicekit.testing import ForgedRequest, forged_token_names, forged_token_requests

PROTECTED = [("post", "/api/v1/things/", {"name": "x"})]
PUBLIC = [("get", "/api/v1/things/", None), ("get", "/api/v2/things/", None)]


def test_forged_token_requests_send_every_case_to_protected_and_all_but_no_token_to_public() -> None:
    names = forged_token_names()
    attempts = forged_token_requests(protected=PROTECTED, public=PUBLIC)

    assert [a for a in attempts if a.path == "/api/v1/things/" and a.method == "post"] == [
        ForgedRequest(name, "post", "/api/v1/things/", {"name": "x"}) for name in names
    ]
    for method, path, _ in PUBLIC:
        cases = [a.case for a in attempts if (a.method, a.path) == (method, path)]
        assert cases == [name for name in names if name != "no-token"]
    assert len(attempts) == len(names) + 2 * (len(names) - 1)
    assert len({str(a) for a in attempts}) == len(attempts)  # distinct pytest ids
