"""The operator's RBAC is least privilege, and one table says what it is.

``pinstack_operator.rbac.PERMISSIONS`` is what the operator may call: its client refuses anything
else. The chart (``charts/pinstack-operator/templates/rbac.yaml``) must grant exactly that --
checked here on the rendered chart and by the API server's own RBAC authorizer -- and never
``list``/``watch`` on Secrets. The session's operator runs as the chart's ServiceAccount (see
``conftest.py``), so every operator test also proves the grant is enough, kopf's calls included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.structs.references import Resource  # the key type kopf's selectors match on
from kubernetes_asyncio import client as k8s

from pinstack_devinfra.helm import helm_template_objects
from pinstack_devinfra.kube import KubeApiServer
from pinstack_operator import rbac
from pinstack_operator.config import OperatorConfig
from pinstack_operator.handlers import build_registry, configure_watching
from pinstack_operator.kubeapi import KubeApi, UndeclaredPermissionError, load_configuration
from pinstack_operator.migrations import DEPLOYMENT_WATCH_SELECTOR, JOB_WATCH_SELECTOR
from pinstack_operator.models import StackSpec
from pinstack_operator.resources import StackRef, migration_job

from .conftest import OPERATOR_CHART, install_operator_identity, token_kubeconfig

Grant = tuple[str, str, str]


def _render(**set_values: str) -> list[dict[str, Any]]:
    return helm_template_objects(
        OPERATOR_CHART, release="pinstack-operator", namespace="pinstack-system",
        set_values=set_values,
    )  # fmt: skip


def _grants(role: dict[str, Any]) -> set[Grant]:
    grants = set()
    for rule in role["rules"]:
        assert not rule.get("nonResourceURLs"), rule
        assert not rule.get("resourceNames"), rule  # an unrestricted grant, compared as such
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    grants.add((group, resource, verb))
    return grants


def test_the_table_never_lists_or_watches_secrets_and_has_no_wildcards() -> None:
    declared = set(rbac.grants())
    assert not declared & rbac.FORBIDDEN
    assert not [grant for grant in declared if "*" in grant]
    assert ("", "secrets", "get") in declared  # by name only


def _leader_election_role(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The Role for the Lease: in the operator's own namespace, whatever it watches."""
    (role,) = [o for o in objects if o["kind"] == "Role"
               and o["metadata"]["name"].endswith("-leader-election")]  # fmt: skip
    assert role["metadata"]["namespace"] == "pinstack-system"
    assert _grants(role) == set(rbac.grants(scope=rbac.OWN_NAMESPACE))
    return role


def test_chart_grants_exactly_the_table_cluster_wide_by_default() -> None:
    objects = _render()
    (role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    assert _grants(role) == set(rbac.grants(scope=rbac.WATCHED))
    (binding,) = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": "pinstack-system"}]  # fmt: skip
    leader = _leader_election_role(objects)
    assert [o["metadata"]["name"] for o in objects if o["kind"] in {"Role", "RoleBinding"}] == [
        leader["metadata"]["name"]
    ] * 2
    assert set(rbac.grants()) == set(rbac.grants(scope=rbac.WATCHED)) | set(
        rbac.grants(scope=rbac.OWN_NAMESPACE)
    )


def test_chart_grants_the_table_per_namespace_and_nothing_cluster_wide_when_scoped() -> None:
    objects = _render(watchNamespaces="{shop,staging}")
    assert not [o for o in objects if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    leader = _leader_election_role(objects)
    roles = [o for o in objects if o["kind"] == "Role" and o is not leader]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["shop", "staging"]
    for role in roles:
        assert _grants(role) == set(rbac.grants(scope=rbac.WATCHED))
    bindings = [o for o in objects if o["kind"] == "RoleBinding"
                and o["metadata"]["name"] != leader["metadata"]["name"]]  # fmt: skip
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["shop", "staging"]


async def test_the_operator_client_refuses_undeclared_calls() -> None:
    api = KubeApi(api_client=cast(k8s.ApiClient, object()), permissions=rbac.PERMISSIONS)
    with pytest.raises(UndeclaredPermissionError, match="list on core/secrets"):
        await api.list("v1", "Secret", namespace="ns")
    with pytest.raises(UndeclaredPermissionError, match="get on batch/jobs"):
        await api.get("batch/v1", "Job", namespace="ns", name="job")
    with pytest.raises(UndeclaredPermissionError, match="patch, create on apps/deployments"):
        await api.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "d", "namespace": "ns"}})  # fmt: skip


def test_kopf_watches_only_declared_resources_label_selected_on_the_server() -> None:
    """kopf watches what has handlers; Jobs and Deployments through server-side selectors (a
    handler's ``labels=`` filters only after the API server sent every object)."""
    registry = build_registry(config=OperatorConfig())
    handlers = [
        *registry._watching.get_all_handlers(),
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
    ]
    watched = {
        (h.selector.group, h.selector.plural or h.selector.any_name) for h in handlers if h.selector
    }
    assert watched == {
        ("pinstack.io", "pinstackstacks"),
        ("batch", "jobs"),
        ("apps", "deployments"),
    }
    for group, plural in watched:
        assert (group, plural, "list") in set(rbac.grants())
        assert (group, plural, "watch") in set(rbac.grants())

    settings = kopf.OperatorSettings()
    configure_watching(settings)
    selectors = settings.watching.label_selectors
    assert selectors.collect(Resource("batch", "v1", "jobs")) == [JOB_WATCH_SELECTOR]
    assert selectors.collect(Resource("apps", "v1", "deployments")) == [DEPLOYMENT_WATCH_SELECTOR]
    assert selectors.collect(Resource("pinstack.io", "v1alpha1", "pinstackstacks")) == []
    assert settings.scanning.disabled  # no cluster-wide CRD/namespace watches

    stack = StackRef(name="s", namespace="ns", uid="u")
    spec = StackSpec.parse({
        "image": {"repository": "r", "tag": "1"},
        "postgres": {"host": "db", "adminCredentialsSecretRef": {"name": "admin"}},
        "kafka": {"bootstrapServers": "k:9092"},
        "services": [{"name": "user", "database": "u"}],
    })  # fmt: skip
    labels = migration_job(stack, spec=spec, service=spec.services[0])["metadata"]["labels"]
    for term in JOB_WATCH_SELECTOR.split(","):
        key, value = term.split("=")
        assert labels[key] == value


async def _allowed(admin: k8s.ApiClient, user: str, grant: Grant, namespace: str | None) -> bool:
    group, resource, verb = grant
    plural, _, subresource = resource.partition("/")
    attributes = k8s.V1ResourceAttributes(
        group=group, resource=plural, subresource=subresource, verb=verb, namespace=namespace
    )
    review = await k8s.AuthorizationV1Api(admin).create_subject_access_review(
        k8s.V1SubjectAccessReview(
            spec=k8s.V1SubjectAccessReviewSpec(
                user=user,
                groups=["system:serviceaccounts", "system:authenticated",
                        f"system:serviceaccounts:{user.split(':')[2]}"],
                resource_attributes=attributes,
            )
        )
    )  # fmt: skip
    return bool(review.status.allowed)


async def test_api_server_authorizes_the_table_and_nothing_else_for_the_operator(
    kube_apiserver: KubeApiServer, operator_identity: tuple[str, Path]
) -> None:
    """The RBAC authorizer, given the chart's rendered RBAC, agrees with the table."""
    user, _ = operator_identity
    configuration = await load_configuration(kubeconfig=str(kube_apiserver.kubeconfig_path))
    async with k8s.ApiClient(configuration=configuration) as admin:
        for grant in rbac.grants(scope=rbac.WATCHED):
            assert await _allowed(admin, user, grant, "any-namespace"), grant
        for grant in rbac.grants(scope=rbac.OWN_NAMESPACE):
            assert await _allowed(admin, user, grant, "pinstack-system"), grant
            assert not await _allowed(admin, user, grant, "any-namespace"), grant
        for forbidden in sorted(rbac.FORBIDDEN):
            assert not await _allowed(admin, user, forbidden, "any-namespace"), forbidden
        for extra in [("", "secrets", "update"), ("apps", "deployments", "patch"),
                      ("batch", "jobs", "update"), ("", "configmaps", "get"),
                      ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
                      ("", "namespaces", "list")]:  # fmt: skip
            assert not await _allowed(admin, user, extra, None), extra


async def test_api_server_confines_a_scoped_operator_to_its_namespaces(
    kube_apiserver: KubeApiServer,
) -> None:
    user, _ = await install_operator_identity(
        kube_apiserver.kubeconfig_path,
        release="scoped",
        namespace="scoped-system",
        set_values={"watchNamespaces": "{scoped-a,scoped-b}"},
    )
    configuration = await load_configuration(kubeconfig=str(kube_apiserver.kubeconfig_path))
    async with k8s.ApiClient(configuration=configuration) as admin:
        for grant in rbac.grants(scope=rbac.OWN_NAMESPACE):
            assert await _allowed(admin, user, grant, "scoped-system"), grant
            assert not await _allowed(admin, user, grant, "scoped-a"), grant
        for grant in rbac.grants(scope=rbac.WATCHED):
            assert await _allowed(admin, user, grant, "scoped-a"), grant
            assert await _allowed(admin, user, grant, "scoped-b"), grant
            assert not await _allowed(admin, user, grant, "elsewhere"), grant
            assert not await _allowed(admin, user, grant, None), grant  # nothing cluster-wide


async def test_the_session_operator_really_acts_as_the_chart_service_account(
    kube_apiserver: KubeApiServer, operator_identity: tuple[str, Path], tmp_path: Path
) -> None:
    user, kubeconfig = operator_identity
    configuration = await load_configuration(kubeconfig=str(kubeconfig))
    async with k8s.ApiClient(configuration=configuration) as client:
        review = await k8s.AuthenticationV1Api(client).create_self_subject_review(
            k8s.V1SelfSubjectReview()
        )
        assert review.status.user_info.username == user
        with pytest.raises(k8s.ApiException) as refused:
            await k8s.CoreV1Api(client).list_namespaced_secret("default")
        assert refused.value.status == 403
    # token_kubeconfig keeps the server and CA, drops the admin's client certificate.
    copy = token_kubeconfig(kube_apiserver.kubeconfig_path, "t", tmp_path / "k")
    assert "client-certificate" not in copy.read_text()
