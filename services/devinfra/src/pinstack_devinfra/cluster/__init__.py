"""A real single-node Kubernetes cluster in a network namespace of its own (the cluster tier).

- :mod:`.binaries`: kubelet and the control plane, CoreDNS and the pause program, built from the
  Go module proxy and cached;
- :mod:`.images`: container images built without pulling a base (debootstrap + podman) and
  imported into the node's containerd;
- :mod:`.netns`: the network namespace every cluster process and client lives in;
- :mod:`.node`: :class:`Cluster`, which starts it all once per machine and undoes it on exit.
"""
