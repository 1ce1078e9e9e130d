# SPDX-License-Identifier: Apache-2.0
"""Nothing reaches into a sandbox: not a plain pod of its namespace, not a
pod of another namespace, not the hosts outside the cluster. The controls
are a plain pod listening the same way, with no policy, which the same
clients do reach."""

import pytest

from probes import (LISTEN_PORT, NETNS_NODE, NETNS_TESTHOSTS, assert_blocked, assert_connects,
                    connect_from_netns, pod_ip)


@pytest.fixture(scope="module")
def where(kubectl, fleet):
    return {"sbx": fleet["sbx"], "other": fleet["other"],
            "sandbox": pod_ip(kubectl, fleet["sbx"], "listener"),
            "plain": pod_ip(kubectl, fleet["other"], "plain-listener")}


def test_the_listeners_listen(kubectl, where):
    """Each listener answers itself on its own address: the sandbox's
    listener is up, so a client that gets nothing was stopped on the
    way."""
    assert_connects(kubectl, where["sbx"], "listener", where["sandbox"], LISTEN_PORT, "hi")
    assert_connects(kubectl, where["other"], "plain-listener", where["plain"], LISTEN_PORT, "hi")


def test_control_a_plain_pod_is_reached_from_both_namespaces(kubectl, where):
    assert_connects(kubectl, where["other"], "client", where["plain"], LISTEN_PORT, "hi")
    assert_connects(kubectl, where["sbx"], "client", where["plain"], LISTEN_PORT, "hi")


def test_a_plain_pod_of_the_same_namespace_cannot_reach_the_sandbox(kubectl, where):
    assert_blocked(kubectl, where["sbx"], "client", where["sandbox"], LISTEN_PORT)


def test_a_pod_of_another_namespace_cannot_reach_the_sandbox(kubectl, where):
    assert_blocked(kubectl, where["other"], "client", where["sandbox"], LISTEN_PORT)


def test_one_sandbox_cannot_reach_another(kubectl, where):
    assert_blocked(kubectl, where["sbx"], "dns-only", where["sandbox"], LISTEN_PORT)


def test_control_the_test_hosts_reach_a_plain_pod(where):
    got = connect_from_netns(NETNS_TESTHOSTS, where["plain"], LISTEN_PORT)
    assert got["connected"] and got["data"] == "hi\n", got


def test_the_test_hosts_cannot_reach_the_sandbox(where, figures):
    got = connect_from_netns(NETNS_TESTHOSTS, where["sandbox"], LISTEN_PORT)
    figures.add("ingress from the test hosts", f"{got}")
    assert not got["connected"], got


def test_the_node_itself_reaches_the_sandbox(where, figures):
    """NetworkPolicy does not apply to the pod's own node: the kubelet
    probes pods from there, and kube-router (like Calico and Cilium)
    accepts traffic whose source is a local address of the node before
    any policy chain. So from the node's network namespace the listener
    answers, policies or not. Whoever runs code on the node is past every
    sandbox boundary anyway; this pins the behaviour so a change shows."""
    got = connect_from_netns(NETNS_NODE, where["sandbox"], LISTEN_PORT)
    figures.add("ingress from the node's netns", f"{got}")
    assert got["connected"] and got["data"] == "hi\n", got
