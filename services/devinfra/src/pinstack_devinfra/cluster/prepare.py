"""Everything the cluster needs before it starts: binaries and image archives, built in parallel.

The Go builds are CPU-bound; debootstrap, apt and PyPI downloads in the image builds mostly wait
on the network — running both at once shortens a cold start by several minutes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pinstack_devinfra.cluster.binaries import ClusterBinaries, cluster_binaries
from pinstack_devinfra.cluster.config import ClusterLayout
from pinstack_devinfra.cluster.images import (
    ImageBuilder,
    cluster_image_archives,
    monitoring_image_archive,
)
from pinstack_devinfra.cluster.prerequisites import ensure_prerequisites

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True)
class Prepared:
    binaries: ClusterBinaries
    image_archives: list[Path]
    builder: ImageBuilder


def prepare(*, repo: Path, app_tag: str, layout: ClusterLayout | None = None) -> Prepared:
    layout = layout or ClusterLayout()
    ensure_prerequisites()  # podman and debootstrap come from Debian too
    builder = ImageBuilder(repo=repo)

    def images() -> tuple[str, str]:
        builder.build_infra_images()
        return builder.build_project_images(tag=app_tag)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="prepare") as pool:
        binaries_future = pool.submit(cluster_binaries)
        images_future = pool.submit(images)
        binaries = binaries_future.result()
        project_images = images_future.result()
    archives = cluster_image_archives(
        builder=builder,
        project_images=project_images,
        pause=binaries.pause,
        coredns=binaries.coredns,
        pause_image=layout.pause_image,
        coredns_image=layout.coredns_image,
    )
    archives.append(
        monitoring_image_archive(builder=builder, operator=binaries.prometheus_operator)
    )
    return Prepared(binaries=binaries, image_archives=archives, builder=builder)
