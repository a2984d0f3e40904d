"""Configuration files of the cluster's components, rendered from one :class:`ClusterLayout`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pinstack_devinfra.pki import CertificateAuthority, write_rsa_key_pair

__all__ = [
    "ClusterLayout",
    "cni_config",
    "containerd_config",
    "kube_proxy_config",
    "kubeconfig",
    "kubelet_config",
    "write_files",
]  # fmt: skip


@dataclass(frozen=True)
class ClusterLayout:
    """Names, addresses and directories of the one cluster a machine may run."""

    state_dir: Path = Path("/var/lib/pinstack-cluster")
    run_dir: Path = Path("/run/pinstack-cluster")
    netns: str = "pinstack-k8s"
    node_bridge: str = "pk8s-node"
    pod_bridge: str = "pk8s-pods"
    node_name: str = "pinstack-node"
    node_ip: str = "10.255.255.1"
    pod_cidr: str = "10.244.0.0/24"
    service_cidr: str = "10.96.0.0/16"
    apiserver_service_ip: str = "10.96.0.1"
    dns_ip: str = "10.96.0.10"
    cgroup_parent: str = "pinstack-cluster"
    pause_image: str = "localhost/pinstack-test/pause:1"
    coredns_image: str = "localhost/pinstack-test/coredns:1"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd" / "containerd.sock"

    @property
    def apiserver_url(self) -> str:
        return f"https://{self.node_ip}:6443"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"


def containerd_config(layout: ClusterLayout) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{layout.state_dir / "containerd"}"
state = "{layout.run_dir / "containerd"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.run_dir / "containerd" / "containerd.sock.ttrpc"}"

[{cri}]
  sandbox_image = "{layout.pause_image}"
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  # Without CAP_SYS_RESOURCE (as here) runc cannot lower oom_score_adj to the -998 the CRI asks
  # for the pause container: clamp every score to containerd's own instead.
  restrict_oom_score_adj = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.state_dir / "cni" / "net.d"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{layout.state_dir / "containerd-opt"}"
"""


def cni_config(layout: ClusterLayout) -> str:
    gateway = layout.pod_cidr.rsplit(".", 1)[0] + ".1"
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "pinstack",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": layout.pod_bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": layout.pod_cidr, "gateway": gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(layout.state_dir / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def kubeconfig(layout: ClusterLayout, *, user: str, cert: Path, key: Path) -> str:
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "pinstack",
                "cluster": {
                    "server": layout.apiserver_url,
                    "certificate-authority": str(layout.pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": "pinstack", "context": {"cluster": "pinstack", "user": user}}],
        "current-context": "pinstack",
    }
    return yaml.safe_dump(document)


def kubelet_config(layout: ClusterLayout) -> str:
    document = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(layout.pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(layout.pki / "kubelet-serving.key"),
        # Hybrid cgroups (v1 controllers + a cgroup2 mount), no systemd on the machine.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{layout.cgroup_parent}",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "clusterDNS": [layout.dns_ip],
        "clusterDomain": "cluster.local",
        # No upstream resolvers: names outside the cluster must not resolve (closed network).
        "resolvConf": str(layout.state_dir / "resolv.conf"),
        "podLogsDir": str(layout.state_dir / "pod-logs"),
        "protectKernelDefaults": False,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "maxPods": 110,
        "registerNode": True,
        "staticPodPath": "",
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }
    return yaml.safe_dump(document)


def kube_proxy_config(layout: ClusterLayout, *, kubeconfig_path: Path) -> str:
    document = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig_path)},
        "mode": "iptables",
        "hostnameOverride": layout.node_name,
        "clusterCIDR": layout.pod_cidr,
        "bindAddress": layout.node_ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Replies from a pod on the same bridge must come back through the NAT (no L2 shortcut).
        "iptables": {"masqueradeAll": True, "syncPeriod": "10s", "minSyncPeriod": "0s"},
        # Zero: leave the machine-wide conntrack limits and timeouts alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    return yaml.safe_dump(document)


def write_files(layout: ClusterLayout) -> None:
    """Certificates, kubeconfigs and every component's configuration, under the state dir."""
    for directory in (layout.pki, layout.logs, layout.state_dir / "cni" / "net.d",
                      layout.run_dir / "containerd"):  # fmt: skip
        directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(layout.pki, common_name="pinstack-cluster-ca")
    ca.issue(
        "apiserver",
        common_name="kube-apiserver",
        dns_names=("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   "kubernetes.default.svc.cluster.local", "localhost"),
        ip_addresses=(layout.node_ip, layout.apiserver_service_ip, "127.0.0.1"),
        server=True,
    )  # fmt: skip
    ca.issue("admin", common_name="pinstack-admin", organization="system:masters", client=True)
    ca.issue(
        "kubelet",
        common_name=f"system:node:{layout.node_name}",
        organization="system:nodes",
        client=True,
    )
    ca.issue(
        "kubelet-serving",
        common_name=layout.node_name,
        dns_names=(layout.node_name,),
        ip_addresses=(layout.node_ip,),
        server=True,
    )
    ca.issue(
        "apiserver-kubelet-client",
        common_name="kube-apiserver-kubelet-client",
        organization="system:masters",
        client=True,
    )
    ca.issue("controller-manager", common_name="system:kube-controller-manager", client=True)
    ca.issue("scheduler", common_name="system:kube-scheduler", client=True)
    ca.issue("kube-proxy", common_name="system:kube-proxy", client=True)
    write_rsa_key_pair(layout.pki, "sa")
    for user in ("admin", "kubelet", "controller-manager", "scheduler", "kube-proxy"):
        (layout.state_dir / f"{user}.kubeconfig").write_text(
            kubeconfig(
                layout,
                user=user,
                cert=layout.pki / f"{user}.crt",
                key=layout.pki / f"{user}.key",
            )
        )
    (layout.state_dir / "containerd.toml").write_text(containerd_config(layout))
    (layout.state_dir / "cni" / "net.d" / "10-pinstack.conflist").write_text(cni_config(layout))
    (layout.state_dir / "kubelet.yaml").write_text(kubelet_config(layout))
    (layout.state_dir / "kube-proxy.yaml").write_text(
        kube_proxy_config(layout, kubeconfig_path=layout.state_dir / "kube-proxy.kubeconfig")
    )
    (layout.state_dir / "resolv.conf").write_text("# cluster names only: no upstream\n")
