"""A client generated from Kiln's OpenAPI document by a standard generator
(`openapi-python-client`, from PyPI) against a real `kiln up`: what a client author who reads
only `/api/v1/openapi.json` gets."""
import importlib
import re
import subprocess
import sys

import pytest
import requests

from conftest import REPO, KilnUp


@pytest.fixture(scope="module")
def kiln(tmp_path_factory):
    up = KilnUp(tmp_path_factory.mktemp("kiln-openapi"))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def generated(kiln, tmp_path_factory):
    """The package `openapi-python-client` writes from the served document."""
    out = tmp_path_factory.mktemp("generated")
    document = requests.get(kiln.api + "/api/v1/openapi.json", timeout=30)
    assert document.status_code == 200
    (out / "openapi.json").write_bytes(document.content)
    generator = REPO / "target" / "py" / "bin" / "openapi-python-client"
    result = subprocess.run(
        [str(generator), "generate", "--path", str(out / "openapi.json"), "--meta", "none",
         "--output-path", str(out / "kiln_generated")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation became a function, but the two the generator cannot send: the tar
    # uploads of a project push and a model version.
    snake = lambda name: re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # noqa: E731
    operations = [(op["tags"][0], snake(op["operationId"]))
                  for methods in document.json()["paths"].values() for op in methods.values()]
    assert len(operations) > 100
    missing = sorted(f"{tag}/{name}" for tag, name in operations
                     if not (out / "kiln_generated" / "api" / tag / f"{name}.py").exists())
    assert missing == ["models/create_model_version", "projects/push_project"], missing
    assert "application/x-tar" in result.stdout + result.stderr
    sys.path.insert(0, str(out))
    return importlib.import_module("kiln_generated")


def test_a_generated_client_makes_real_calls(kiln, generated):
    from kiln_generated import AuthenticatedClient, Client
    from kiln_generated.api.identity import create_team, health, list_teams, whoami
    from kiln_generated.api.models import create_model, get_model, list_models
    from kiln_generated.api.workgroups import create_workgroup
    from kiln_generated.models import CreateModelBody, CreateTeamBody, CreateWorkgroupBody, Error

    anonymous = Client(base_url=kiln.api)
    assert health.sync(client=anonymous).status == "ok"
    # Without a token: a 401, parsed as the document's Error.
    refused = whoami.sync_detailed(client=anonymous)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, Error) and "token" in refused.parsed.error

    client = AuthenticatedClient(base_url=kiln.api, token=kiln.token)
    me = whoami.sync(client=client)
    assert me.admin is True
    created = create_team.sync_detailed(client=client, body=CreateTeamBody(name="lab"))
    assert created.status_code == 201
    assert created.parsed.name == "lab"
    create_team.sync(client=client, body=CreateTeamBody(name="zoo"))
    # Paging, as the document says: one team a page, then the next from the cursor.
    first = list_teams.sync(client=client, limit=1)
    assert [t.name for t in first.items] == ["lab"] and first.next_ == "lab"
    second = list_teams.sync(client=client, limit=1, after=first.next_)
    assert [t.name for t in second.items] == ["zoo"]

    group = create_workgroup.sync_detailed(
        client=client, team="lab", body=CreateWorkgroupBody(name="vision"))
    assert group.status_code == 201
    model = create_model.sync(client=client, team="lab", workgroup="vision",
                              body=CreateModelBody(name="iris", description="flowers"))
    assert model.name == "iris"
    shown = get_model.sync(client=client, team="lab", workgroup="vision", model="iris")
    assert shown.description == "flowers" and shown.latest_version is None
    listed = list_models.sync(client=client, team="lab", workgroup="vision")
    assert [m.name for m in listed.items] == ["iris"]
    missing = get_model.sync_detailed(client=client, team="lab", workgroup="vision",
                                      model="nope")
    assert missing.status_code == 404 and isinstance(missing.parsed, Error)
