# SPDX-License-Identifier: Apache-2.0
"""What a sandbox on the real node can reach: exactly its allow list (CIDR,
except, port, endPort) and kube-dns, nothing else. Every denial is paired
with a plain pod reaching the same address and port (the control): the
listener is there, so the sandbox's failure is its policy's doing."""

import pytest

from probes import EXCEPTED_HOST, OUTSIDE_DNS, TEST_HOST, exec_in, expect, on_node

H = TEST_HOST


@pytest.fixture(scope="module")
def sbx(fleet):
    return fleet["sbx"]


def test_the_control_pod_reaches_every_test_host_listener(kubectl, sbx):
    """Without any policy the listeners answer: the denials below are the
    policies' doing, not missing listeners or routes."""
    expect(kubectl, sbx, "client", {**{(H, p): True for p in (80, 443, 8000, 8050, 8100, 9000)},
                                    (EXCEPTED_HOST, 443): True})
    proc = exec_in(kubectl, sbx, "client", f"nslookup anything.example {OUTSIDE_DNS}")
    assert proc.returncode == 0 and f"Address: {TEST_HOST}" in proc.stdout, proc.stdout


def test_sandboxes_run_on_the_real_node(kubectl, sbx):
    for name in ("allow-443", "except", "ranges", "dns-only", "no-dns", "listener", "client"):
        on_node(kubectl, sbx, name)


def test_an_allowed_cidr_and_port_connects_and_no_other_port_does(kubectl, sbx):
    expect(kubectl, sbx, "allow-443", {(H, 443): True, (H, 80): False, (H, 8000): False})


def test_an_except_address_inside_an_allowed_cidr_is_not_reached(kubectl, sbx):
    expect(kubectl, sbx, "except", {(EXCEPTED_HOST, 443): False, (H, 443): True, (H, 80): False})


def test_an_end_port_range_includes_both_ends_and_nothing_past_them(kubectl, sbx):
    """spec.egress.allow[].ports[] {port: 8000, endPort: 8100} becomes the
    NetworkPolicy port {protocol: TCP, port: 8000, endPort: 8100}."""
    policy = kubectl.json("-n", sbx, "get", "networkpolicy", "ranges")
    assert policy["spec"]["egress"][1]["ports"] == [
        {"protocol": "TCP", "port": 8000, "endPort": 8100}]
    expect(kubectl, sbx, "ranges", {(H, 8000): True, (H, 8050): True, (H, 8100): True,
                                     (H, 9000): False, (H, 443): False, (H, 80): False})


def test_names_resolve_through_kube_dns_only(kubectl, sbx):
    """With dns (the default) the sandbox asks kube-dns (its resolv.conf
    names the Service, 10.96.0.10), which forwards to the outside server;
    asking that server directly is not allowed."""
    proc = exec_in(kubectl, sbx, "dns-only", "nslookup anything.example")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Address: {TEST_HOST}" in proc.stdout, proc.stdout
    direct = exec_in(kubectl, sbx, "dns-only", f"nslookup anything.example {OUTSIDE_DNS}")
    assert direct.returncode != 0, direct.stdout
    assert TEST_HOST not in direct.stdout, direct.stdout


def test_a_sandbox_with_no_allow_list_reaches_nothing_but_kube_dns(kubectl, sbx):
    expect(kubectl, sbx, "dns-only", {(H, 443): False, (H, 80): False, (H, 8000): False,
                                       (EXCEPTED_HOST, 443): False})


def test_a_sandbox_without_dns_resolves_nothing_and_reaches_nothing(kubectl, sbx):
    proc = exec_in(kubectl, sbx, "no-dns", "nslookup anything.example")
    assert proc.returncode != 0, proc.stdout
    assert TEST_HOST not in proc.stdout, proc.stdout
    expect(kubectl, sbx, "no-dns", {(H, 443): False, ("10.96.0.10", 53): False})
