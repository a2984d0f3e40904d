"""Upgrading the operator chart upgrades the CRD (also from the release that shipped it in
``crds/``, adopted as docs/kubernetes.md says); uninstalling keeps it (and the stacks).

Real ``helm`` against a real kube-apiserver of its own (the session's has the CRD applied
without Helm). Helm never upgrades what a chart ships in ``crds/``; the CRD is a template with
``helm.sh/resource-policy: keep``, so ``helm upgrade`` applies a new printer column and
``helm uninstall`` leaves the CRD in place.
"""

from __future__ import annotations

import re
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


def _previous_release(tmp_path: Path) -> Path:
    """The chart as released before: the CRD in ``crds/`` (no Reason column), no template."""
    chart = tmp_path / "previous" / "pinstack-operator"
    shutil.copytree(OPERATOR_CHART, chart)
    (chart / "templates" / "crd-pinstackstack.yaml").unlink()
    (chart / "crds").mkdir()
    crd = (chart / "files" / "crds" / "pinstackstack.yaml").read_text()
    assert REASON_COLUMN in crd
    (chart / "crds" / "pinstackstack.yaml").write_text(crd.replace(REASON_COLUMN, ""))
    shutil.rmtree(chart / "files" / "crds")
    meta = chart / "Chart.yaml"
    meta.write_text(re.sub(r"(?m)^version: .*$", "version: 0.0.1", meta.read_text()))
    return chart


def _next_release(tmp_path: Path) -> Path:
    """A later chart whose CRD gained one more printer column."""
    chart = tmp_path / "next" / "pinstack-operator"
    shutil.copytree(OPERATOR_CHART, chart)
    crd = chart / "files" / "crds" / "pinstackstack.yaml"
    extra = "        - name: Next\n          type: string\n          jsonPath: .status.phase\n"
    crd.write_text(crd.read_text().replace(REASON_COLUMN, REASON_COLUMN + extra))
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
    _helm(fresh_apiserver, "install", *release, _previous_release(tmp_path), "--create-namespace")
    installed = await eventually(lambda: _crd(fresh_apiserver), what="the CRD")
    assert "Reason" not in _columns(installed)

    api = connect(await load_configuration(kubeconfig=str(fresh_apiserver.kubeconfig_path)))
    try:
        # A stack, to be kept through upgrades and uninstall.
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

        # docs/kubernetes.md: let Helm adopt the CRD the former crds/ directory installed.
        await api.patch(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", namespace=None, name=CRD_NAME,
            patch={"metadata": {
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "pinstack-operator",
                                "meta.helm.sh/release-namespace": "pinstack-system"},
            }},
        )  # fmt: skip
        _helm(fresh_apiserver, "upgrade", *release, OPERATOR_CHART)
        upgraded = await _crd(fresh_apiserver)
        assert upgraded is not None
        assert "Reason" in _columns(upgraded)
        assert upgraded["spec"] == yaml.safe_load(CRD_FILE.read_text())["spec"] | {
            "conversion": upgraded["spec"]["conversion"]  # defaulted by the API server
        }

        # And from the template to a later template.
        _helm(fresh_apiserver, "upgrade", *release, _next_release(tmp_path))
        later = await _crd(fresh_apiserver)
        assert later is not None
        assert "Next" in _columns(later)

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
