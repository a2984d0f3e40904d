"""The release's charts: ``make chart-release`` pins both charts to one version and two image
digests, packages them, and the packages render every container from its image by digest.

Real helm (built from the Go module proxy, cached) lints, packages and renders the ``.tgz``
files, as ``helm install oci://...`` would see them.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinstack_devinfra.commands import ToolError, run
from pinstack_devinfra.gotools import helm_binary
from pinstack_devinfra.helm import helm_template_objects
from pinstack_devinfra.oci_registry import OciRegistry
from pinstack_devinfra.release.__main__ import main
from pinstack_devinfra.release.charts import pin_values

REPO = Path(__file__).resolve().parents[2]
VERSION = "1.4.0-rc.1"
REGISTRY = "registry.example.com/acme"
DIGESTS = {"pinstack": "sha256:" + "a1" * 32, "pinstack-operator": "sha256:" + "b2" * 32}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    status = main([
        "charts", "--version", VERSION, "--registry", REGISTRY, "--dist", str(dist),
        "--app-digest", DIGESTS["pinstack"], "--operator-digest", DIGESTS["pinstack-operator"],
    ])  # fmt: skip
    assert status == 0
    return {name: dist / f"{name}-{VERSION}.tgz" for name in DIGESTS}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    with OciRegistry(workdir=tmp_path_factory.mktemp("registry")) as served:
        yield served


def _member(package: Path, name: str) -> str:
    chart = package.name.removesuffix(f"-{VERSION}.tgz")
    with tarfile.open(package) as archive:
        handle = archive.extractfile(f"{chart}/{name}")
        assert handle is not None
        return handle.read().decode()


def _containers(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind/name/container, image) of every container and init container of every workload."""
    pods = [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
            for o in objects if "template" in o.get("spec", {})]  # fmt: skip
    return [(f"{where}/{container['name']}", container["image"])
            for where, pod in pods
            for container in pod.get("initContainers", []) + pod["containers"]]  # fmt: skip


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_packaged_chart_carries_the_release_version(packages: dict[str, Path], name: str) -> None:
    chart = yaml.safe_load(_member(packages[name], "Chart.yaml"))
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_packaged_chart_renders_every_image_by_digest(packages: dict[str, Path], name: str) -> None:
    containers = _containers(helm_template_objects(packages[name], namespace="shop"))
    # The operator; or six services, five with a wait-for-schema init container.
    assert len(containers) == (1 if name == "pinstack-operator" else 11), containers
    expected = f"{REGISTRY}/{name}@{DIGESTS[name]}"
    assert {image for _, image in containers} == {expected}, containers


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_packaged_values_are_pinned_and_keep_their_comments(
    packages: dict[str, Path], name: str
) -> None:
    packaged = _member(packages[name], "values.yaml")
    image = yaml.safe_load(packaged)["image"]
    assert image["repository"] == f"{REGISTRY}/{name}"
    assert (image["tag"], image["digest"]) == (VERSION, DIGESTS[name])
    original = (REPO / "charts" / name / "values.yaml").read_text()
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in packaged.splitlines() if line.lstrip().startswith("#")] == comments
    assert len(packaged.splitlines()) == len(original.splitlines())


def test_pushed_charts_come_back_from_the_registry_as_packaged(
    packages: dict[str, Path],
    registry: OciRegistry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`make chart-push`, then what docs/kubernetes.md has a user run against the registry."""
    monkeypatch.setenv("SSL_CERT_FILE", str(registry.ca_file))
    charts = f"{registry.address}/acme"
    dist = packages["pinstack"].parent
    argv = ["push-charts", "--version", VERSION, "--registry", charts, "--dist", str(dist)]
    assert main(argv) == 0
    for name, package in packages.items():
        reference = f"oci://{charts}/charts/{name}"
        run([helm_binary(), "pull", reference, "--version", VERSION, "--destination", tmp_path])
        assert (tmp_path / package.name).read_bytes() == package.read_bytes()
        values = run([helm_binary(), "show", "values", reference, "--version", VERSION]).stdout
        # The docs' cosign loop reads the digest from this line.
        assert re.findall(r'^  digest: "(sha256:[0-9a-f]{64})"$', values, re.MULTILINE) == [
            DIGESTS[name]
        ]


def test_packages_leave_out_the_chart_tests_and_ci_values(packages: dict[str, Path]) -> None:
    for package in packages.values():
        with tarfile.open(package) as archive:
            names = archive.getnames()
        assert not [n for n in names if "/tests/" in n or "/ci/" in n], names


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--version", "v1.2.3", "not SemVer"),
        ("--version", "1.2", "not SemVer"),
        ("--app-digest", "sha256:abc", "not sha256"),
        ("--operator-digest", "latest", "not sha256"),
    ],
)
def test_bad_versions_and_digests_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    arguments = {"--version": "1.2.3", "--app-digest": DIGESTS["pinstack"],
                 "--operator-digest": DIGESTS["pinstack-operator"], option: value}  # fmt: skip
    argv = ["charts", "--registry", REGISTRY, "--dist", str(tmp_path)]
    for key, given in arguments.items():
        argv += [key, given]
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tgz"))


def test_pinning_refuses_values_without_the_image_keys() -> None:
    with pytest.raises(ToolError, match="lacks"):
        pin_values("image:\n  repository: x\n", repository="r", tag="1.0.0", digest="sha256:0")
    with pytest.raises(ToolError, match="no top-level"):
        pin_values("defaults:\n  image: {}\n", repository="r", tag="1.0.0", digest="sha256:0")
