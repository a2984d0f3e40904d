"""Upgrading the operator chart upgrades the CRD; uninstalling keeps it (and the stacks).

Real ``helm`` against a real kube-apiserver of its own (the session's has the CRD applied
without Helm). Helm never upgrades what a chart ships in ``crds/``; the CRD is a template with
``helm.sh/resource-policy: keep``, so ``helm upgrade`` applies a new printer column and
``helm uninstall`` leaves the CRD in place.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinstack_devinfra.commands import run
from pinstack_devinfra.gotools import helm_binary
from pinstack_devinfra.kube import KubeApiServer
from pinstack_operator.kubeapi import NotFoundError, connect, load_configuration
from tests.polling import eventually

from .conftest import CRD_FILE, OPERATOR_CHART

CRD_NAME = "pinstackstacks.pinstack.io"
REASON_COLUMN = """        - name: Reason
          type: string
          jsonPath: .status.conditions[?(@.type=="Ready")].reason
"""


@pytest.fixture(scope="module")
def fresh_apiserver() -> Iterator[KubeApiServer]:
    workdir = Path(tempfile.mkdtemp(prefix="pinstack-helm-"))
    server = KubeApiServer(workdir=workdir / "kube")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _previous_chart(tmp_path: Path) -> Path:
    """The chart as a release before the Reason column (same layout, older CRD)."""
    chart = tmp_path / "pinstack-operator"
    shutil.copytree(OPERATOR_CHART, chart)
    crd = chart / "files" / "crds" / "pinstackstack.yaml"
    text = crd.read_text()
    assert REASON_COLUMN in text
    crd.write_text(text.replace(REASON_COLUMN, ""))
    meta = chart / "Chart.yaml"
    meta.write_text(meta.read_text().replace("version: 0.1.0", "version: 0.0.9"))
    return chart


def _helm(server: KubeApiServer, *args: str | Path) -> str:
    return run([helm_binary(), "--kubeconfig", server.kubeconfig_path, *args]).stdout


async def _crd(server: KubeApiServer) -> dict[str, Any] | None:
    api = connect(await load_configuration(kubeconfig=str(server.kubeconfig_path)))
    try:
        return await api.find(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", namespace=None, name=CRD_NAME
        )
    finally:
        await api.close()


def _columns(crd: dict[str, Any]) -> list[str]:
    (version,) = crd["spec"]["versions"]
    return [column["name"] for column in version["additionalPrinterColumns"]]


async def test_helm_upgrade_upgrades_the_crd_and_uninstall_keeps_it(
    fresh_apiserver: KubeApiServer, tmp_path: Path
) -> None:
    release = ["pinstack-operator", "--namespace", "pinstack-system"]
    _helm(fresh_apiserver, "install", *release, _previous_chart(tmp_path), "--create-namespace")
    installed = await eventually(lambda: _crd(fresh_apiserver), what="the CRD")
    assert "Reason" not in _columns(installed)

    # A stack, to be kept through upgrade and uninstall.
    api = connect(await load_configuration(kubeconfig=str(fresh_apiserver.kubeconfig_path)))
    try:
        await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        example = yaml.safe_load((CRD_FILE.parents[1] / "manifests" / "examples"
                                  / "pinstackstack.yaml").read_text())  # fmt: skip
        example["metadata"]["namespace"] = "shop"

        async def stack_accepted() -> bool:
            try:
                await api.apply(example)
            except NotFoundError:
                return False  # the new CRD's API is not served yet
            return True

        await eventually(stack_accepted, within=60, what="the stack created")

        _helm(fresh_apiserver, "upgrade", *release, OPERATOR_CHART)
        upgraded = await _crd(fresh_apiserver)
        assert upgraded is not None
        assert "Reason" in _columns(upgraded)
        assert upgraded["spec"] == yaml.safe_load(CRD_FILE.read_text())["spec"] | {
            "conversion": upgraded["spec"]["conversion"]  # defaulted by the API server
        }

        uninstalled = _helm(fresh_apiserver, "uninstall", *release)
        assert "kept due to the resource policy" in uninstalled
        assert await _crd(fresh_apiserver) is not None
        assert await api.find("apps/v1", "Deployment", namespace="pinstack-system",
                              name="pinstack-operator") is None  # fmt: skip
        kept = await api.find("pinstack.io/v1alpha1", "PinstackStack", namespace="shop",
                              name=example["metadata"]["name"])  # fmt: skip
        assert kept is not None
    finally:
        await api.close()
