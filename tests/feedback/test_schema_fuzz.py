"""The schemathesis drill, short form: every check against the live API (gunicorn on its own PostgreSQL and
Redis), with a volunteer's token and a maintainer's, a few examples per operation: zero failures.

The full form is ``bench/schema_fuzz.py`` (200 examples per operation and token; figures in bench/README.md).
"""

from __future__ import annotations

import pytest

from tests import drill_stack as live_stack
from tests.drill_stack import Stack, schemathesis_run

pytestmark = [pytest.mark.redis, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if live_stack.missing():
        pytest.skip(f"needs {live_stack.missing()}")
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


# --- what the drill found, in process ---------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,content_type,status",
    [
        (b"null", "application/json", 400),
        (b"[1]", "application/json", 400),
        (b'{"min_votes": 1000001}', "application/json", 400),
        (b'{"bogus": 1}', "application/json", 400),
        (b"", "multipart/form-data; boundary=x", 415),
        (b"garbage", "", 415),
        (b"a=1", "application/x-www-form-urlencoded", 415),
    ],
)
def test_a_build_request_that_is_not_a_json_object_of_known_filters_queues_nothing(
    maintainer, body, content_type, status
):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from feedback.models import DatasetSnapshot

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(maintainer)[1]}")
    response = client.generic("POST", "/api/v1/datasets/", body, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json()["error"]
    assert DatasetSnapshot.objects.count() == 0


@pytest.mark.django_db
def test_a_path_parameter_of_the_wrong_type_is_a_json_404_under_the_api_only(volunteer):
    from django.test import Client

    client = Client()
    client.force_login(volunteer)
    response = client.post("/api/v1/pairs/null,null/skip/")
    assert response.status_code == 404 and response.json() == {"error": "nothing at '/api/v1/pairs/null,null/skip/'"}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_every_operation_documents_the_plumbing_errors():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"429", "503"} <= codes, (method, path)
            if method == "post":
                assert {"413", "415"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if path != "/api/v1/token/":
                assert {"401", "403"} <= codes, (method, path)
            assert operation["responses"]["503"]["headers"]["Retry-After"]
