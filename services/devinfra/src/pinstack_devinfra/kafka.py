"""A real single-node Apache Kafka broker (KRaft) from Maven Central jars, run by the installed JVM.

The first use resolves ``org.apache.kafka:kafka_2.13`` and a Log4j 2 backend through a tiny
generated pom (``mvn dependency:copy-dependencies``) into
``cache_dir("kafka", KAFKA_VERSION)``; later runs only check that the ``libs/`` directory is
complete and never touch Maven again.

One broker lives in one data directory: ``server.properties``, ``log4j2.properties``, the KRaft
metadata and topic logs, ``broker.log`` and ``broker.pid``. The ports are picked once (free
loopback ports) and written into ``server.properties``, so a broker restarted on the same data
directory comes back on the same address: clients reconnect, and ``make dev-up`` keeps its data
across ``dev-down``/``dev-up``.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from pinstack_devinfra.cache import build_once, cache_dir
from pinstack_devinfra.commands import log
from pinstack_devinfra.ports import free_port, port_open
from pinstack_devinfra.procs import alive, ours, stop_processes

__all__ = ["KAFKA_VERSION", "KafkaBroker", "KafkaError", "SaslSslListener", "kafka_libs"]

KAFKA_VERSION = "4.1.1"
_LOG4J_VERSION = "2.25.3"
# Kafka's tree pins slf4j-api 1.7 through an old transitive path; log4j-slf4j2-impl needs 2.x.
_SLF4J_VERSION = "2.0.17"
_READY_TIMEOUT = 90.0


class KafkaError(RuntimeError):
    """The broker could not be installed or started; the message says what to do."""


@dataclass(frozen=True, kw_only=True)
class SaslSslListener:
    """A second listener, ``SASL_SSL`` with the PLAIN mechanism, advertised as ``localhost``.

    ``keystore`` is one PEM file with the broker's private key (PKCS#8, unencrypted) and its
    certificate, which must be valid for ``localhost``; ``users`` are the PLAIN logins. The
    PLAINTEXT listener stays for the controller, the readiness probe and set-up.
    """

    keystore: Path
    users: Mapping[str, str]


def _sasl_ssl_properties(listener: SaslSslListener) -> dict[str, object]:
    logins = " ".join(f'user_{name}="{password}"' for name, password in listener.users.items())
    prefix = "listener.name.sasl_ssl"
    return {
        "sasl.enabled.mechanisms": "PLAIN",
        f"{prefix}.plain.sasl.jaas.config":
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {logins};",
        f"{prefix}.ssl.keystore.type": "PEM",
        f"{prefix}.ssl.keystore.location": listener.keystore,
    }  # fmt: skip


def _pom(version: str) -> str:
    deps = [
        ("org.apache.kafka", "kafka_2.13", version),
        ("org.apache.logging.log4j", "log4j-core", _LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j2-impl", _LOG4J_VERSION),
        ("org.slf4j", "slf4j-api", _SLF4J_VERSION),
    ]
    body = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>\n"
        for g, a, v in deps
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "<modelVersion>4.0.0</modelVersion>\n"
        "<groupId>local.pinstack</groupId><artifactId>kafka-broker</artifactId>"
        "<version>1</version>\n"
        f"<dependencies>\n{body}</dependencies>\n</project>\n"
    )


def kafka_libs(version: str = KAFKA_VERSION) -> Path:
    """The directory of broker jars (resolved from Maven Central once, then cached)."""
    root = cache_dir("kafka", version)
    marker = root / "libs.complete"
    build_once(root, done=marker.exists, build=lambda: _fetch_libs(root, version))
    return root / "libs"


def _fetch_libs(root: Path, version: str) -> None:
    libs = root / "libs"
    marker = root / "libs.complete"
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError(
            "Apache Maven is needed once to fetch the Kafka broker jars from Maven Central: "
            "install it (Debian: `apt-get install -y maven`) and retry"
        )
    log(f"downloading Apache Kafka {version} jars from Maven Central (once, ~40 MB)")
    (root / "pom.xml").write_text(_pom(version))
    partial = root / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    _run_maven(
        [mvn, "-B", "-f", str(root / "pom.xml"), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={partial}"]
    )  # fmt: skip
    # Drop the stale slf4j 1.7 api if Maven still copied it next to 2.x.
    for stale in partial.glob("slf4j-api-1.*.jar"):
        stale.unlink()
    shutil.rmtree(libs, ignore_errors=True)
    os.replace(partial, libs)
    marker.write_text(f"{len(list(libs.glob('*.jar')))} jars\n")
    log(f"cached {len(list(libs.glob('*.jar')))} jars in {libs}")


def _run_maven(args: list[str]) -> None:
    """Run Maven, printing one progress line per jar it downloads; keep the rest for errors."""
    lines: list[str] = []
    with subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            # "Downloaded from central: https://.../kafka-clients-4.1.1.jar (17 MB at 9 MB/s)"
            if line.startswith("Downloaded from") and ".jar " in line:
                name = line.split("/")[-1].strip()
                log(f"  downloaded {name}")
        code = process.wait()
    if code != 0:
        raise KafkaError(f"mvn failed ({code}):\n{''.join(lines[-60:])}")


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    found = str(candidate) if candidate and candidate.exists() else shutil.which("java")
    if found is None:
        raise KafkaError(
            "a Java runtime (17 or newer) is needed for the Kafka broker: install one "
            "(Debian: `apt-get install -y openjdk-17-jre-headless`)"
        )
    return found


_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.apache.name = org.apache.kafka
logger.apache.level = {level}
"""


class KafkaBroker:
    """One KRaft broker+controller in ``data_dir``, listening on loopback.

    Use as a context manager, or ``start()``/``stop()``. ``stop()`` followed by ``start()`` on
    the same object (or a new object on the same ``data_dir``) brings back the same broker with
    its topics, offsets and address. ``keep_running=True`` leaves the broker up when the context
    exits (``make dev-up``); a later ``KafkaBroker`` on that directory adopts the running process.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int | None = None,
        keep_running: bool = False,
        version: str = KAFKA_VERSION,
        num_partitions: int = 3,
        log_level: str = "WARN",
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        # Absolute: the path is how a later process recognises this broker in /proc.
        self.data_dir = Path(data_dir).resolve()
        self.keep_running = keep_running
        self.version = version
        self._requested_port = port
        self._num_partitions = num_partitions
        self._log_level = log_level
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.controller_port = 0
        self.sasl_ssl_port = 0
        self._sasl_ssl = sasl_ssl

    @property
    def bootstrap_servers(self) -> str:
        if not self.port:
            raise KafkaError("the broker has not been started")
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """The SASL_SSL listener by the name its certificate carries."""
        if not self.sasl_ssl_port:
            raise KafkaError("the broker has no SASL_SSL listener")
        return f"localhost:{self.sasl_ssl_port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, timeout: float = _READY_TIMEOUT) -> None:
        """Install (once), configure and format (once), start, and wait until ready."""
        libs = kafka_libs(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._configure()
        running = self._running_pid()
        if running is not None:
            # A broker kept running by an earlier process (``make dev-up``): adopt it.
            self._wait_ready(timeout, pid=running)
            return
        self._format(libs)
        log(f"starting Kafka {self.version} on {self.bootstrap_servers} ({self.data_dir})")
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [_java(), "-Xms128m", "-Xmx512m", "-XX:+UseG1GC",
                 f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                 "-cp", f"{libs}/*", "kafka.Kafka", str(self.data_dir / "server.properties")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self._pid_file.write_text(str(self._process.pid))
        self._wait_ready(timeout, pid=self._process.pid)

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the broker gracefully (SIGTERM, then SIGKILL after ``timeout``); data is kept."""
        pid = self._process.pid if self._process is not None else self._running_pid()
        if pid is None:
            return
        stop_processes([pid], timeout=timeout)
        if self._process is not None:
            self._process.wait()  # reap our child: it exited, only its status is left
        self._process = None
        self._pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep_running:
            self.stop()

    # ------------------------------------------------------------------ internals

    def _running_pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # The pid might have been reused by an unrelated process since the broker died.
        return pid if ours(pid, "kafka.Kafka", str(self.data_dir)) else None

    def _configure(self) -> None:
        """Write server.properties once; reuse its ports on every later start."""
        props_file = self.data_dir / "server.properties"
        if props_file.exists():
            props = dict(
                line.split("=", 1)
                for line in props_file.read_text().splitlines()
                if "=" in line and not line.startswith("#")
            )
            self.port = int(props["pinstack.broker.port"])
            self.controller_port = int(props["pinstack.controller.port"])
            self.sasl_ssl_port = int(props.get("pinstack.sasl_ssl.port", "0"))
            return
        self.port = self._requested_port or free_port()
        self.controller_port = free_port()
        logs = self.data_dir / "logs"
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        advertised = list(listeners)
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if self._sasl_ssl is not None:
            self.sasl_ssl_port = free_port()
            listeners.append(f"SASL_SSL://127.0.0.1:{self.sasl_ssl_port}")
            advertised.append(f"SASL_SSL://localhost:{self.sasl_ssl_port}")
            protocols += ",SASL_SSL:SASL_SSL"
        lines: dict[str, object] = {
            # Kafka ignores unknown keys (it logs them); we keep our ports next to their users.
            "pinstack.broker.port": self.port,
            "pinstack.controller.port": self.controller_port,
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{self.controller_port}"]),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": protocols,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": logs,
            "num.partitions": self._num_partitions,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 3,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            # One member joining an empty group should not wait 3 s for company (tests, dev).
            "group.initial.rebalance.delay.ms": 0,
            # Topics are provisioned (ensure_topics / the operator), never made by a typo.
            "auto.create.topics.enable": "false",
            "log.segment.bytes": 16 * 1024 * 1024,
        }
        if self._sasl_ssl is not None:
            lines["pinstack.sasl_ssl.port"] = self.sasl_ssl_port
            lines.update(_sasl_ssl_properties(self._sasl_ssl))
        text = "".join(f"{key}={value}\n" for key, value in lines.items())
        props_file.write_text(text)
        (self.data_dir / "log4j2.properties").write_text(
            _LOG4J2.format(log=self.log_file, level=self._log_level)
        )

    def _format(self, libs: Path) -> None:
        """Format the KRaft storage once per data directory."""
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        # Kafka cluster ids are 16 random bytes, base64url without padding (22 chars). One in 64
        # starts with "-"; only the "--cluster-id=" form keeps the parser from taking it for a flag.
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [_java(), f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
             "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format", f"--cluster-id={cid}",
             "-c", str(self.data_dir / "server.properties"), "--ignore-formatted"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise KafkaError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    def _wait_ready(self, timeout: float, *, pid: int) -> None:
        """Ready means: the process lives and the broker answers a metadata request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                raise KafkaError(f"the Kafka broker exited during startup; see {self.log_file}:\n"
                                 f"{self._log_tail()}")  # fmt: skip
            if port_open(self.port) and self._metadata_ok():
                return
            time.sleep(0.2)
        raise KafkaError(f"the Kafka broker was not ready within {timeout:.0f}s; see "
                         f"{self.log_file}:\n{self._log_tail()}")  # fmt: skip

    def _metadata_ok(self) -> bool:
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:  # devinfra does not require the client: the open port must do
            return True
        # log_level 0: a broker still starting up is expected here, not worth a log line.
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any failure here just means "not yet"
            return False
        return bool(metadata.brokers)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def main() -> int:
    """``python -m pinstack_devinfra.kafka [DATA_DIR]``: run a broker until Ctrl-C."""
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else cache_dir("kafka-scratch")
    with KafkaBroker(data_dir=data_dir) as broker:
        log(f"Kafka ready at {broker.bootstrap_servers}; Ctrl-C stops it")
        with suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
