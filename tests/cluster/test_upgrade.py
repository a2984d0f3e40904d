"""Upgrade to a release with one more migration and roll back, under a steady load."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory

from pinstack_devinfra.cluster.images import upgrade_image_archive
from tests.cluster.conftest import (
    APP_TAG,
    COMPONENTS,
    REPO,
    Fixtures,
    Installed,
    docs_block,
    rollout_under_load,
)

NEW_TAG = f"{APP_TAG}-next"
MIGRATION_PATH = "services/notification/src/pinstack_notification/migrations/versions/0099_next.py"
MIGRATION = '''"""A next release's expand-only migration (the cluster tier's upgrade test).

Revision ID: 0099
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("cluster_upgrade_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("cluster_upgrade_probe")
'''


def _images(installed: Installed) -> dict[str, set[str]]:
    deployments = installed.cluster.kubectl_json("get", "deployments", "-n", "default")["items"]
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: {
            c["image"] for c in d["spec"]["template"]["spec"]["containers"]
        }
        for d in deployments
    }


def _notification_head(installed: Installed) -> str:
    return installed.cluster.kubectl(
        "exec", "-n", "pinstack-infra", "postgresql-0", "--", "psql", "-U", "postgres",
        "-d", "pinstack_notification", "-tAc", "SELECT version_num FROM alembic_version",
    ).strip()  # fmt: skip


def test_helm_upgrade_migrates_first_and_rollback_becomes_ready(
    installed: Installed, load_fixtures: Fixtures
) -> None:
    cluster = installed.cluster
    head = ScriptDirectory(str(REPO / Path(MIGRATION_PATH).parent.parent)).get_current_head()
    assert head is not None
    archive = upgrade_image_archive(
        builder=installed.prepared.builder,
        tag=NEW_TAG,
        migration=(MIGRATION_PATH, MIGRATION.format(head=head)),
    )
    cluster.import_image_archive(archive)

    report = rollout_under_load(
        installed,
        load_fixtures,
        what="helm upgrade",
        change=lambda: installed.shell(docs_block("upgrade"), env={"NEW_TAG": NEW_TAG}),
    )
    assert report.failures == [], report.failures
    images = _images(installed)
    assert all(images[c] == {f"ghcr.io/pinstack/pinstack:{NEW_TAG}"} for c in COMPONENTS), images
    assert _notification_head(installed) == "0099"
    # The migration Job for the new image finished before any new notification pod was ready.
    jobs = cluster.kubectl_json("get", "jobs", "-n", "default")["items"]
    job = next(
        j for j in jobs
        if "notification" in j["metadata"]["name"]
        and NEW_TAG in j["spec"]["template"]["spec"]["containers"][0]["image"]
    )  # fmt: skip
    finished = datetime.fromisoformat(job["status"]["completionTime"])
    pods = cluster.kubectl_json(
        "get", "pods", "-n", "default", "-l", "app.kubernetes.io/component=notification"
    )["items"]
    new_pods = [p for p in pods if NEW_TAG in p["spec"]["containers"][0]["image"]]
    assert len(new_pods) >= 2, [p["metadata"]["name"] for p in pods]
    for pod in new_pods:
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert datetime.fromisoformat(ready["lastTransitionTime"]) >= finished, pod["metadata"][
            "name"
        ]

    report = rollout_under_load(
        installed,
        load_fixtures,
        what="helm rollback",
        change=lambda: installed.shell(docs_block("rollback")),
    )
    assert report.failures == [], report.failures
    images = _images(installed)
    assert all(images[c] == {f"ghcr.io/pinstack/pinstack:{APP_TAG}"} for c in COMPONENTS), images
    # The older image serves on the newer schema (nothing was downgraded).
    assert _notification_head(installed) == "0099"
