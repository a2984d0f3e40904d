"""``python -m pinstack_devinfra.cluster {binaries,prepare,up,clean}``.

- ``binaries``: only the Go programs (Kubernetes, etcd, CoreDNS, pause, the Prometheus Operator,
  Prometheus, helm); ``make test-k8s`` and ``make test-cluster`` run it first, so that a cold
  build is not inside a test's timeout;
- ``prepare``: build (first time) or check every binary and image the tier needs, with progress;
- ``up``: start the cluster and keep it until Ctrl-C (prints how to reach it), for a look around;
- ``clean``: stop what a killed run left behind and undo its machine-wide state; with
  ``--check`` only report what is left (``make test-cluster`` ends with it).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading

from pinstack_devinfra.cluster._log import log
from pinstack_devinfra.cluster.binaries import cluster_binaries
from pinstack_devinfra.cluster.config import ClusterLayout
from pinstack_devinfra.cluster.machine import machine_lock
from pinstack_devinfra.cluster.node import Cluster, unwind_on_signals
from pinstack_devinfra.cluster.prepare import prepare
from pinstack_devinfra.commands import repo_root
from pinstack_devinfra.gotools import helm_binary

DEFAULT_TAG = "0.1.0"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pinstack_devinfra.cluster")
    parser.add_argument("command", choices=["binaries", "prepare", "up", "clean"])
    parser.add_argument("--tag", default=DEFAULT_TAG, help="tag of the project's images")
    parser.add_argument(
        "--check", action="store_true", help="clean: only report leftovers (exit 1 if any)"
    )
    args = parser.parse_args()
    repo = repo_root()
    if args.command == "binaries":
        built = cluster_binaries()
        monitoring = ", ".join(sorted(built.prometheus_operator))
        log(
            f"ready: {', '.join(sorted(built.kubernetes))}, etcd, coredns, pause, {monitoring}, "
            f"{helm_binary()}"
        )
    elif args.command == "prepare":
        prepared = prepare(repo=repo, app_tag=args.tag)
        log(f"ready: {', '.join(str(p) for p in prepared.image_archives)}")
    elif args.command == "clean":
        layout = ClusterLayout()
        machine = Cluster(layout=layout).machine
        with machine_lock(timeout=60):
            if args.check:
                found = machine.leftovers(bridges=(layout.node_bridge, layout.pod_bridge))
                for item in found:
                    log(f"left behind: {item}")
                log("the machine is clean" if not found else f"{len(found)} leftovers")
                sys.exit(1 if found else 0)
            machine.restore()
        log("cleaned")
    else:
        prepared = prepare(repo=repo, app_tag=args.tag)
        with (
            contextlib.suppress(KeyboardInterrupt),
            unwind_on_signals(),
            Cluster(image_archives=prepared.image_archives) as cluster,
        ):
            log(f"kubeconfig: {cluster.kubeconfig}")
            log(f"clients: {' '.join(cluster.netns.command(['kubectl', 'get', 'nodes']))}")
            log("Ctrl-C stops the cluster and restores the machine")
            threading.Event().wait()


if __name__ == "__main__":
    main()
