# SPDX-License-Identifier: Apache-2.0
"""The suite's Sandboxes are written by a tenant, not an admin, so kage's
admission policies judge them as they would a user's: the class is
granted only to the suite's granted namespaces, and a Sandbox naming it
elsewhere is refused when written, naming the class and the namespace."""

from probes import sandbox
from sandboxes import get


def test_the_class_is_refused_where_it_is_not_granted(kubectl, tenant, fleet, real_node_class):
    other = fleet["other"]  # the tenant may write Sandboxes there; no grant
    proc = tenant.apply(sandbox(other, "borrower", real_node_class), check=False)
    assert proc.returncode != 0
    assert (f"spec.sandboxClassName: SandboxClass {real_node_class} may not be used in "
            f"namespace {other}: its namespaceSelector does not select it; use a class "
            "granted to this namespace") in proc.stderr, proc.stderr
    assert get(kubectl, other, "sandbox", "borrower") is None


def test_the_tenant_may_not_touch_what_isolates_a_sandbox(tenant, fleet):
    sbx = fleet["sbx"]
    for verb, what in (("delete", "networkpolicy/allow-443"), ("delete", "pod/allow-443"),
                       ("delete", "networkpolicy/kage-baseline")):
        proc = tenant.run("-n", sbx, verb, what, "--dry-run=server", check=False)
        assert proc.returncode != 0 and "Forbidden" in proc.stderr, (what, proc.stderr)
