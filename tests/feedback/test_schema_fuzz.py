"""The schemathesis drill, short form: every check against the live API (gunicorn on its own PostgreSQL and
Redis), with a volunteer's token and a maintainer's, a few examples per operation: zero failures.

The full form is ``bench/schema_fuzz.py`` (200 examples per operation and token; figures in bench/README.md).
"""

from __future__ import annotations

import shutil

import pytest

from tests.live_stack import Stack, schemathesis_run

pytestmark = [pytest.mark.redis, pytest.mark.timeout(300)]

if shutil.which("redis-server") is None:
    pytest.skip("needs redis-server and PostgreSQL's initdb", allow_module_level=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("schema-fuzz"), worker=False) as stack:
        yield stack


@pytest.mark.parametrize("who", ["volunteer", "maintainer"])
def test_schemathesis_finds_nothing(stack, who, tmp_path):
    token = stack.seed["maintainer"] if who == "maintainer" else stack.seed["volunteers"][0][1]
    result = schemathesis_run(stack.base_url, token, max_examples=5, seed=11, workdir=tmp_path)
    assert result["returncode"] == 0, result["output"][-8000:]
    assert "failure" not in result["summary"] and "error" not in result["summary"], result["summary"]
    generated = int(result["generated"].split(" generated")[0].replace(",", ""))
    assert generated >= 10 * 5, result["generated"]  # ten operations, each one run


def test_a_garbage_multipart_body_queues_no_build(stack):
    import requests

    headers = {"Authorization": f"Token {stack.seed['maintainer']}"}
    before = stack.postgres.sql("SELECT count(*) FROM feedback_datasetsnapshot", db=stack.db)[0][0]
    for content_type, body in [
        ("multipart/form-data; boundary=x", b"--x\r\ngarbage"),
        ("multipart/form-data; boundary=x", b""),
        ("", b"\x00\xff garbage"),
    ]:
        response = requests.post(
            f"{stack.base_url}/api/v1/datasets/", data=body, headers={**headers, "Content-Type": content_type},
            timeout=30,
        )  # fmt: skip
        assert response.status_code == 415, response.text
        assert response.json()["error"].startswith("the body must be JSON")
    assert stack.postgres.sql("SELECT count(*) FROM feedback_datasetsnapshot", db=stack.db)[0][0] == before
