"""The Postman collection (contracts/postman/): committed as generated, and its journeys pass in newman.

The collection is generated from the committed OpenAPI schemas plus ``contracts/postman/journeys.yaml``
(``.venv/bin/python scripts/postman.py``); like the schemas themselves, a stale committed file fails
here. The Journeys folder then runs with newman against the session's test stack, with accounts
nobody has used, and must end without a single failed assertion or script error. The npm tools are
installed from the lock file (``npm ci``) when ``contracts/postman/node_modules`` is missing.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts import postman  # noqa: E402


def test_committed_collection_and_environment_match_regeneration() -> None:
    for path, text in postman.build().items():
        rel = path.relative_to(REPO)
        assert path.exists(), f"{rel} is missing: run `.venv/bin/python scripts/postman.py`"
        assert path.read_text() == text, (
            f"{rel} differs from what the schemas and journeys.yaml generate: "
            "run `.venv/bin/python scripts/postman.py` and commit the result"
        )


@pytest.mark.stack
def test_newman_runs_the_journeys_without_a_failure(stack) -> None:  # noqa: ANN001 - scripts.platform_stack.Stack
    fresh = uuid.uuid4().hex[:10]
    run = postman.newman(
        stack.gateway_url, env_vars={"ownerUsername": f"pm-owner-{fresh}", "voterUsername": f"pm-voter-{fresh}"}
    )
    failures = [f"{f['source']['name']}: {f['error'].get('test', '')} {f['error']['message']}" for f in run["failures"]]
    assert failures == [], "\n".join(failures) + "\n" + run["cli_output"][-4000:]
    # Every journey request ran (the results request may have repeated itself while waiting) and
    # ended with an assertion that passed: an empty folder or a script that bailed out cannot pass.
    tested = [e["item"]["name"] for e in run["executions"] if e.get("assertions")]
    assert tested == postman.journey_names(), run["cli_output"][-4000:]
    assert run["stats"]["assertions"] == {"total": len(tested), "pending": 0, "failed": 0}
