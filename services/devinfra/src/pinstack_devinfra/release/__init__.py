"""The release path: the project's two images and its two charts, pinned to one version.

- :mod:`.images`: ``make images`` builds both images locally exactly as the cluster tier does
  (podman, private storage, no base pulled); ``make release-images`` builds them for amd64 and
  arm64 with ``docker buildx``, pushes and signs them (CI on a version tag);
- :mod:`.charts`: ``make chart-release`` copies both charts, pins their version, appVersion and
  image defaults (repository, tag, digest) to a release and packages them; ``make chart-push``
  pushes the packages to an OCI registry.
"""

from __future__ import annotations

__all__: list[str] = []
