# Runs inside the Kafka image as its entrypoint.
# ruff: noqa: S108, S603, S606, S607 - fixed programs from the image's PATH; /tmp is the container's
"""KAFKA_FOO_BAR=x -> foo.bar=x (``__`` -> ``_``, ``___`` -> ``-``), format KRaft storage once,
then exec the broker: the environment interface of the apache/kafka image."""

import base64
import os
import subprocess
import uuid
from pathlib import Path

SKIP = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_CLUSTER_ID"}


def property_name(variable: str) -> str:
    name = variable.removeprefix("KAFKA_").lower()
    return name.replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")


def main() -> None:
    props = {
        property_name(key): value
        for key, value in os.environ.items()
        if key.startswith("KAFKA_") and key not in SKIP
    }
    log_dirs = props.setdefault("log.dirs", "/tmp/kafka-logs")
    config = Path(log_dirs.split(",")[0]).parent / "server.properties"
    if not os.access(config.parent, os.W_OK):
        config = Path("/tmp/server.properties")
    config.write_text("".join(f"{key}={value}\n" for key, value in sorted(props.items())))
    classpath = "/opt/kafka/libs/*"
    if not Path(log_dirs.split(",")[0], "meta.properties").exists():
        cluster_id = os.environ.get("KAFKA_CLUSTER_ID") or (
            base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        )
        subprocess.run(
            ["java", "-cp", classpath, "kafka.tools.StorageTool", "format",
             # "=" form: a base64url id may start with "-" and read as a flag.
             f"--cluster-id={cluster_id}", "-c", str(config), "--ignore-formatted"],
            check=True,
        )  # fmt: skip
    heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m").split()
    os.execvp("java", ["java", *heap, "-XX:+UseG1GC", "-cp", classpath, "kafka.Kafka", str(config)])


if __name__ == "__main__":
    main()
