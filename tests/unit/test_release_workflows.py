"""The GitHub Actions workflows: what they run and what they may touch.

actionlint (``make lint``) checks that the workflows are valid; these tests check the project's
own rules on top: CI is ``make test`` on every push and pull request; a release is gated on it;
a workflow step runs only make targets (so CI only calls what ``make`` runs here too); every
third-party action is pinned by commit; only the release job may write packages and get an
OIDC token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
_PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def _workflow(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    # YAML 1.1 reads the `on:` key as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z0-9_-]+):.*## ", text, flags=re.MULTILINE))


def test_ci_runs_make_test_on_every_push_and_pull_request() -> None:
    ci = _workflow("ci.yml")
    assert ci["on"]["push"] == {"branches": ["**"]}
    assert "pull_request" in ci["on"]
    assert "workflow_call" in ci["on"]
    runs = [step["run"] for step in ci["jobs"]["test"]["steps"] if "run" in step]
    assert runs[-1] == ".ci/run"
    assert (REPO / ".ci" / "run").read_text().strip().endswith("make test")


def test_ci_builds_what_a_tag_publishes_without_pushing() -> None:
    job = _workflow("ci.yml")["jobs"]["release-images"]
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make release-images-check"]
    uses = {step["uses"].split("@")[0] for step in job["steps"] if "uses" in step}
    assert {"docker/setup-qemu-action", "docker/setup-buildx-action"} <= uses
    assert "docker/login-action" not in uses


def test_release_runs_on_version_tags_after_the_tests() -> None:
    release = _workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    assert release["jobs"]["publish"]["needs"] == "test"


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_steps_run_only_make_targets(name: str) -> None:
    targets = _make_targets()
    for step in _steps(_workflow(name)):
        command = step.get("run", "")
        for called in re.findall(r"^\s*make ([\w-]+)", command, flags=re.MULTILINE):
            assert called in targets, f"{name}: `make {called}` is no documented target"
    release_makes = [
        re.findall(r"make ([\w-]+)", step["run"])
        for step in _steps(_workflow("release.yml"))
        if "make " in step.get("run", "")
    ]
    assert release_makes == [["release-images"], ["chart-release"], ["chart-push"]]


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_actions_are_pinned_by_commit(name: str) -> None:
    for step in _steps(_workflow(name)):
        if "uses" in step:
            assert _PINNED.match(step["uses"]), f"{name}: {step['uses']} is not pinned by SHA"


def test_only_the_publish_job_may_write_packages_and_sign() -> None:
    for name in ("ci.yml", "release.yml"):
        workflow = _workflow(name)
        assert workflow["permissions"] == {"contents": "read"}, name
    release = _workflow("release.yml")
    publish = release["jobs"]["publish"]["permissions"]
    assert publish == {"contents": "read", "packages": "write", "id-token": "write"}
    for job_name, job in _workflow("ci.yml")["jobs"].items():
        assert "permissions" not in job, job_name
