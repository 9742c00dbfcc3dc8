"""The class on Kubernetes: deploy/z2jh/values.yaml, merged over the Zero to
JupyterHub chart's default values as helm does, validates against the
chart's schema; the routes it relies on are ones the chart exposes; the
images are built from the source tree.  (No cluster here: what a cluster
would do is not tested.)"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import yaml

from helpers import run
from xmailnb.classroom import k8s

REPO = Path(__file__).resolve().parent.parent
CHART = REPO.parent / "shared" / "z2jh"  # ../shared/z2jh relative to the repository
VALUES = REPO / "deploy" / "z2jh" / "values.yaml"
DOCKER = REPO / "deploy" / "docker"


def _merge(base, override):
    """helm's coalescing of a values file over the chart's values: maps merge
    key by key, anything else replaces, null removes the key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="module")
def chart():
    # Test data beside the repository (CI: ../shared/z2jh): missing is a failure, not a skip.
    assert (CHART / "values.schema.yaml").is_file() and (CHART / "values.yaml").is_file(), CHART
    return (yaml.safe_load((CHART / "values.yaml").read_text()),
            yaml.safe_load((CHART / "values.schema.yaml").read_text()))


@pytest.fixture(scope="module")
def ours():
    return yaml.safe_load(VALUES.read_text())


def test_the_values_validate_against_the_charts_schema(chart, ours):
    defaults, schema = chart
    merged = _merge(defaults, ours)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.path))
    assert [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors] == []


def test_the_merge_and_the_schema_check_see_a_mistake(chart, ours):
    defaults, schema = chart
    broken = _merge(ours, {"hub": {"service": {"extraPorts": "8003"}}, "singleuser": {"storage": {"capacity": 200}}})
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(_merge(defaults, broken)))
    assert sorted(".".join(map(str, e.path)) for e in errors) == ["hub.service.extraPorts",
                                                                    "singleuser.storage.capacity"]
    assert _merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"c": None, "d": 3}, "l": [2]}) == \
        {"a": {"b": 1, "d": 3}, "l": [2]}


def test_trainees_reach_the_board_through_routes_the_chart_exposes(ours):
    board = ours["hub"]["services"]["class-board"]
    # The proxy reaches the board at the hub Service's extra port ...
    url = re.fullmatch(r"http://hub:(\d+)", board["url"])
    assert url is not None
    port = int(url.group(1))
    assert [p for p in ours["hub"]["service"]["extraPorts"] if p["port"] == port] == [
        {"name": "class-board", "port": port, "targetPort": port}]
    assert board["environment"]["XMAILNB_CLASS_BOARD_PORT"] == str(port)
    ingress = ours["hub"]["networkPolicy"]["ingress"]
    assert [r["from"] for r in ingress if {"port": port} in r["ports"]] == [
        [{"podSelector": {"matchLabels": {"component": "proxy"}}}]]
    # ... and the trainees' servers report through proxy-public, which routes /services/class-board/.
    env = ours["singleuser"]["extraEnv"]
    assert env["XMAILNB_CLASS_BOARD_URL"] == "http://proxy-public/services/class-board/"
    assert board["environment"]["XMAILNB_CLASS_HUB_URL"] == "http://proxy-public"
    assert board["command"] == ["python", "-m", "xmailnb.classroom.k8s"]


def test_nothing_about_the_people_is_fixed_in_the_values(ours):
    text = VALUES.read_text()
    # The roster is on the hub's volume (writable), not a read-only Secret subPath.
    assert "secret" not in json.dumps(ours["hub"]).lower()
    assert "subPath" not in json.dumps(ours["hub"])
    assert ours["hub"]["db"]["type"] == "sqlite-pvc"
    assert ours["hub"]["config"]["ClassAuthenticator"]["class_dir"] == k8s.CLASS_DIR
    assert k8s.CLASS_DIR.startswith("/srv/jupyterhub/")  # the chart's hub-db-dir mount
    assert "loadRoles" not in ours["hub"]
    assert "XMAILNB_LANG" not in ours["singleuser"]["extraEnv"]
    assert "k8s.trainer_roles(k8s.CLASS_DIR)" in text and "k8s.spawner_environment(k8s.CLASS_DIR)" in text
    compile(ours["hub"]["extraConfig"]["xmailnb"], "extraConfig", "exec")


def test_the_trainer_and_the_languages_come_from_the_roster(tmp_path):
    root = tmp_path / "class"
    assert k8s.trainer_roles(str(root))[0]["users"] == []  # before `classroom init`: nobody
    assert run("classroom", "init", str(root), "--trainer", "mori", "--trainees", "ito", "--lang", "ja").code == 0
    roles = k8s.trainer_roles(str(root))
    assert roles == [{"name": "xmailnb-trainer", "description": "The trainer: opens the class board.",
                      "scopes": ["access:services!service=class-board"], "users": ["mori"]}]
    lang = k8s.spawner_environment(str(root))["XMAILNB_LANG"]
    assert lang(SimpleNamespace(user=SimpleNamespace(name="ito"))) == "ja"
    assert lang(SimpleNamespace(user=SimpleNamespace(name="stranger"))) == ""


def test_the_images_are_built_from_the_source_tree():
    for name in ("hub.Dockerfile", "singleuser.Dockerfile"):
        text = (DOCKER / name).read_text()
        assert "COPY --chown=root:root . /usr/local/src/xmailnb" in text
        assert "pip install --no-cache-dir /usr/local/src/xmailnb" in text
        assert not re.search(r"pip install[^\n]*\bxmailnb\b(?!\.)(?![/\w])", text.replace("/usr/local/src/xmailnb", ""))
    assert "FROM ${K8S_HUB_IMAGE}" in (DOCKER / "hub.Dockerfile").read_text()
    assert 'CMD ["python", "-m", "xmailnb.classroom.singleuser"]' in (DOCKER / "singleuser.Dockerfile").read_text()
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
