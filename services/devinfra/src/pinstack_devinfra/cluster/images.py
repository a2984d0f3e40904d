"""Container images for the cluster tier, built without pulling anything from a registry.

podman runs with a private configuration and storage under ``cache_dir("podman")`` (runc, fixed
ulimits, host network for builds, no registries), so the machine's own podman setup is neither
needed nor touched. Two stand-in bases are imported under the names the project's Dockerfiles
use (``python:<ver>-slim-bookworm`` from the debootstrap root filesystem, ``ghcr.io/astral-sh/uv``
from the uv wheel on PyPI): the Dockerfiles themselves stay exactly what a user with Docker
builds, and the kind path uses the same ones. Layers are cached in the private storage, so a
rebuild after a source change redoes only the last steps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from pinstack_devinfra.cache import cache_dir
from pinstack_devinfra.cluster._log import log, step
from pinstack_devinfra.cluster.rootfs import base_rootfs_tarball
from pinstack_devinfra.kafka import kafka_libs

__all__ = [
    "INFRA_IMAGES",
    "MONITORING_IMAGES",
    "ImageBuilder",
    "PodmanError",
    "cluster_image_archives",
    "monitoring_image_archive",
    "upgrade_image_archive",
]

_HERE = Path(__file__).resolve().parent
# The upstream image manifests/kind/infra.yaml names -> (build context, local stand-in).
INFRA_IMAGES = {
    "docker.io/library/postgres:17-alpine": ("postgresql", "localhost/pinstack-test/postgresql:15"),
    "docker.io/library/redis:7-alpine": ("redis", "localhost/pinstack-test/redis:7"),
    "docker.io/apache/kafka:4.1.0": ("kafka", "localhost/pinstack-test/kafka:4"),
}
DEBIAN_BASE = "localhost/pinstack-test/debian:bookworm"
# The in-cluster monitoring stack (the Prometheus Operator's images and what it runs).
MONITORING_IMAGES = {
    "operator": "localhost/pinstack-test/prometheus-operator:v0.85.0",
    "config-reloader": "localhost/pinstack-test/prometheus-config-reloader:v0.85.0",
    "prometheus": "localhost/pinstack-test/prometheus:v3.5.0",
    "alertmanager": "localhost/pinstack-test/alertmanager:0.25-debian",
}

_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "host"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

_STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{graphroot}"
runroot = "{runroot}"
"""


class PodmanError(RuntimeError):
    """podman (or an image step around it) failed; the message carries its output."""


def _dockerfile_args(dockerfile: Path) -> dict[str, str]:
    """``ARG NAME=default`` lines of a Dockerfile (the base image versions it asks for)."""
    found = re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
    return dict(found)


def _download(url: str, *, accept: str | None = None) -> bytes:
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own https URLs
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - PyPI's https
        return bytes(response.read())


def _uv_wheel_url(version: str) -> str:
    """The manylinux x86_64 wheel of uv ``version`` (it carries the static binary).

    Asked of the simple index in its JSON form (PEP 691), the API every PyPI mirror serves.
    """
    index = os.environ.get("PINSTACK_PYPI_SIMPLE", "https://pypi.org/simple")
    listing = json.loads(_download(f"{index}/uv/", accept="application/vnd.pypi.simple.v1+json"))
    prefix = f"uv-{version}-"
    for entry in listing["files"]:
        name = entry["filename"]
        wheel = name.startswith(prefix) and name.endswith(".whl")
        if wheel and "manylinux" in name and "x86_64" in name:
            return str(entry["url"])
    raise PodmanError(f"no manylinux x86_64 wheel of uv {version} on {index}")


class ImageBuilder:
    """podman with private config and storage; builds, tags, saves images."""

    def __init__(self, *, repo: Path) -> None:
        self.repo = repo
        root = cache_dir("podman")
        self._conf = root / "containers.conf"
        self._conf.write_text(_CONTAINERS_CONF)
        self._storage = root / "storage.conf"
        self._storage.write_text(
            _STORAGE_CONF.format(graphroot=root / "storage", runroot=root / "run")
        )
        self._registries = root / "registries.conf"
        self._registries.write_text("unqualified-search-registries = []\n")
        self._podman = shutil.which("podman")
        if self._podman is None:
            raise PodmanError("podman is required to build images: apt-get install podman")

    def podman(self, *args: str, quiet: bool = False) -> str:
        env = {
            **os.environ,
            "CONTAINERS_CONF": str(self._conf),
            "CONTAINERS_STORAGE_CONF": str(self._storage),
            "CONTAINERS_REGISTRIES_CONF": str(self._registries),
            "BUILDAH_ISOLATION": "chroot",
        }
        process = subprocess.Popen(  # noqa: S603 - fixed program, arguments of ours
            [self._podman or "podman", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        lines: list[str] = []
        with process.stdout:  # closed here, not by a GC warning at an arbitrary later moment
            for line in process.stdout:
                lines.append(line)
                # A cold build runs minutes: show each Dockerfile step as it starts.
                if not quiet and line.startswith("STEP"):
                    log(f"  {line.rstrip()[:140]}")
        output = "".join(lines)
        if process.wait() != 0:
            raise PodmanError(f"podman {' '.join(args[:3])} failed:\n{output[-6000:]}")
        return output

    def exists(self, name: str) -> bool:
        try:
            self.podman("image", "exists", name, quiet=True)
        except PodmanError:
            return False
        return True

    # ------------------------------------------------------------------ stand-in bases

    def ensure_bases(self) -> None:
        """The Dockerfiles' base images, made locally under the names they use."""
        args = _dockerfile_args(self.repo / "Dockerfile")
        python_image = f"docker.io/library/python:{args['PYTHON_VERSION']}-slim-bookworm"
        uv_image = f"ghcr.io/astral-sh/uv:{args['UV_VERSION']}"
        if not self.exists(DEBIAN_BASE):
            tarball = base_rootfs_tarball()
            with step("importing the debootstrap root filesystem into podman"):
                self.podman(
                    "import",
                    "--change",
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    # uv and Python use the system trust store (egress TLS may be intercepted).
                    "--change",
                    "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                    "--change",
                    'CMD ["/bin/bash"]',
                    str(tarball),
                    DEBIAN_BASE,
                    quiet=True,
                )
        if not self.exists(python_image):
            self.podman("tag", DEBIAN_BASE, python_image, quiet=True)
        if not self.exists(uv_image):
            with step(f"making {uv_image} from the uv wheel on PyPI"):
                self._import_uv(args["UV_VERSION"], uv_image)

    def _import_uv(self, version: str, name: str) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            wheel = Path(scratch, "uv.whl")
            wheel.write_bytes(_download(_uv_wheel_url(version)))
            layer = Path(scratch, "uv.tar")
            with zipfile.ZipFile(wheel) as archive, tarfile.open(layer, "w") as tar:
                for member in archive.namelist():
                    binary = member.rsplit("/", 1)[-1]
                    if ".data/scripts/" in member and binary in {"uv", "uvx"}:
                        target = Path(scratch, binary)
                        target.write_bytes(archive.read(member))
                        target.chmod(0o755)
                        tar.add(target, arcname=binary)
            self.podman("import", str(layer), name, quiet=True)

    # ------------------------------------------------------------------ builds

    def build(
        self,
        *,
        tag: str,
        context: Path,
        dockerfile: Path | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
    ) -> str:
        args = ["build", "--pull=never", "--network=host", "--layers", "-t", tag]
        if dockerfile is not None:
            args += ["-f", str(dockerfile)]
        if target is not None:
            args += ["--target", target]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        with step(f"building image {tag}"):
            self.podman(*args, str(context))
        return tag

    def build_context(self, destination: Path) -> Path:
        """A copy of what .dockerignore admits (the lockfile, pyprojects, sources), to build from
        or to modify (a test's extra migration) without touching the checkout."""
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
        destination.mkdir(parents=True, exist_ok=True)
        for name in ("pyproject.toml", "uv.lock", "Dockerfile", "Dockerfile.operator",
                     ".dockerignore"):  # fmt: skip
            shutil.copy2(self.repo / name, destination / name)
        for name in ("services", "operator"):
            shutil.copytree(self.repo / name, destination / name, ignore=ignore)
        return destination

    def build_project_images(self, *, tag: str) -> tuple[str, str]:
        """The app and operator images from the project's own Dockerfiles: their ``runtime``
        stage, the one a release publishes (the app Dockerfile ends with Tilt's ``dev``)."""
        self.ensure_bases()
        app = self.build(
            tag=f"ghcr.io/pinstack/pinstack:{tag}",
            context=self.repo,
            dockerfile=self.repo / "Dockerfile",
            target="runtime",
        )
        operator = self.build(
            tag=f"ghcr.io/pinstack/pinstack-operator:{tag}",
            context=self.repo,
            dockerfile=self.repo / "Dockerfile.operator",
            target="runtime",
        )
        return app, operator

    def build_infra_images(self) -> dict[str, str]:
        """PostgreSQL, Redis and Kafka stand-ins (built once; their inputs never change).

        Each honours the interface manifests/kind/infra.yaml uses of the upstream image it
        stands in for (environment, arguments, user, probes); returns upstream -> local name.
        """
        self.ensure_bases()
        for context_name, image in INFRA_IMAGES.values():
            if self.exists(image):
                continue
            with tempfile.TemporaryDirectory() as scratch:
                context = Path(scratch, context_name)
                shutil.copytree(_HERE / "images" / context_name, context)
                if context_name == "kafka":
                    shutil.copytree(kafka_libs(), context / "libs")
                self.build(tag=image, context=context, build_args={"BASE_IMAGE": DEBIAN_BASE})
        return {upstream: image for upstream, (_, image) in INFRA_IMAGES.items()}

    def save(self, names: Sequence[str], archive: Path) -> Path:
        """One docker-archive holding ``names`` (for ``ctr images import``), replaced atomically."""
        partial = archive.with_name(archive.name + ".partial")
        partial.unlink(missing_ok=True)
        with step(f"saving {len(names)} images"):
            self.podman(
                "save", "--multi-image-archive", "--format", "docker-archive",
                "-o", str(partial), *names, quiet=True,
            )  # fmt: skip
        os.replace(partial, archive)
        return archive

    def binary_image(
        self, *, name: str, binary: Path, entrypoint: Sequence[str], at: str | None = None
    ) -> str:
        """An image holding one static binary at ``/<at>`` (default ``/<binary name>``)."""
        if self.exists(name):
            return name
        with tempfile.TemporaryDirectory() as scratch:
            layer = Path(scratch, "layer.tar")
            with tarfile.open(layer, "w") as tar:
                tar.add(binary, arcname=at or binary.name)
            self.podman(
                "import", "--change", f"ENTRYPOINT {json.dumps(list(entrypoint))}",
                str(layer), name, quiet=True,
            )  # fmt: skip
        return name


def cluster_image_archives(
    *,
    builder: ImageBuilder,
    project_images: Sequence[str],
    pause: Path,
    coredns: Path,
    pause_image: str,
    coredns_image: str,
) -> list[Path]:
    """Build every image the tier runs and save them as archives for ``ctr images import``.

    The infrastructure images (pause, CoreDNS, PostgreSQL, Redis, Kafka) never change with the
    project's sources: their archive is saved once and cached. The project's images are rebuilt
    (podman's layer cache makes that quick when only sources changed) and saved every run.
    """
    archives = cache_dir("images")
    static = archives / "cluster-infra.tar"
    if not static.exists():
        names = [
            builder.binary_image(name=pause_image, binary=pause, entrypoint=["/pause"]),
            builder.binary_image(name=coredns_image, binary=coredns, entrypoint=["/coredns"]),
        ]
        for upstream, local in builder.build_infra_images().items():
            builder.podman("tag", local, upstream, quiet=True)
            names.append(upstream)
        builder.save(names, static)
    project = archives / "cluster-project.tar"
    builder.save(project_images, project)
    return [static, project]


def monitoring_image_archive(*, builder: ImageBuilder, operator: Mapping[str, Path]) -> Path:
    """The Prometheus Operator, its config reloader, Prometheus and Alertmanager, saved once.

    ``operator`` holds the Go binaries (``operator``, ``config-reloader``, ``prometheus``); the
    reloader sits at the path the operator runs it by (``/bin/prometheus-config-reloader``).
    Alertmanager is Debian's (images/alertmanager).
    """
    archive = cache_dir("images") / "cluster-monitoring.tar"
    if archive.exists():
        return archive
    builder.ensure_bases()
    names = MONITORING_IMAGES
    builder.binary_image(name=names["operator"], binary=operator["operator"],
                         entrypoint=["/operator"])  # fmt: skip
    builder.binary_image(
        name=names["config-reloader"],
        binary=operator["config-reloader"],
        entrypoint=["/bin/prometheus-config-reloader"],
        at="bin/prometheus-config-reloader",
    )
    builder.binary_image(name=names["prometheus"], binary=operator["prometheus"],
                         entrypoint=["/bin/prometheus"], at="bin/prometheus")  # fmt: skip
    if not builder.exists(names["alertmanager"]):
        builder.build(
            tag=names["alertmanager"],
            context=_HERE / "images" / "alertmanager",
            build_args={"BASE_IMAGE": DEBIAN_BASE},
        )
    return builder.save(list(names.values()), archive)


def upgrade_image_archive(*, builder: ImageBuilder, tag: str, migration: tuple[str, str]) -> Path:
    """The app image as a next release would be: the checkout plus one migration file.

    ``migration`` is (path inside the repository, content). Only the app image is built (the
    operator's image does not change between the two releases).
    """
    with tempfile.TemporaryDirectory() as scratch:
        context = builder.build_context(Path(scratch, "context"))
        path, content = migration
        (context / path).write_text(content)
        image = builder.build(
            tag=f"ghcr.io/pinstack/pinstack:{tag}",
            context=context,
            dockerfile=context / "Dockerfile",
            target="runtime",
        )
    return builder.save([image], cache_dir("images") / "cluster-upgrade.tar")
