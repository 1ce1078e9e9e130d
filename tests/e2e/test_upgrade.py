# SPDX-License-Identifier: Apache-2.0
"""An upgrade of kage keeps running sandboxes, with two builds of the
controller on a real API server: the session's, and a second one
(`make render-next`, compiled with KAGE_RENDER_NEXT) that renders pods
otherwise, with one more label (a field of the pod's form) and annotation
(a change of the spec-hash), for the same Sandbox and class.

- the pod the first build made keeps running under the second: it is
  judged by the record in the Sandbox's status, not by what the second
  build would render;
- a spec change still replaces it, and the new pod has the new form;
- an edit of a kage-set label on the live pod is still undone by
  replacement;
- back on the first build (a downgrade), the pod of the second stays too;
- a pod whose record was lost is kept (and recorded again) only by a
  build that renders it exactly so, and replaced by the other.
"""

import re
import subprocess

import pytest

from conftest import REPO, Controller, free_port, wait_for
from expected import RESTRICTED
from sandboxes import get, wait_reason
from test_sandbox import CONVERGE, create_ready, wait_replaced

NEXT = REPO / "build" / "render-next" / "kage-controller"
RENDERING = "kage.dev/rendering"  # what the second build adds to its pods


@pytest.fixture(scope="module")
def next_build():
    """The second build, made as `make render-next` makes it."""
    subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "render-next"],
                   check=True, capture_output=True, text=True)
    return NEXT


def record_of(kubectl, ns, name):
    sbx = get(kubectl, ns, "sandbox", name)
    return (sbx or {}).get("status", {}).get("podRecord")


def wait_recorded(kubectl, ns, name, uid):
    """The Sandbox's record names pod uid: kage took it on."""
    return wait_for(lambda: (record_of(kubectl, ns, name) or {}).get("uid") == uid and
                    record_of(kubectl, ns, name), timeout=CONVERGE,
                    what=f"the record of pod {uid}")


def verdicts(ctl, key):
    """The verdicts a controller run at debug level logged for sandbox key."""
    return [line.get("verdict") for line in ctl.log_lines()[ctl.mark:]
            if line.get("msg") == "pod judged by its record" and line.get("sandbox") == key]


def replacements(ctl, key):
    return [line for line in ctl.log_lines()[ctl.mark:]
            if line.get("msg") == "replacing pod" and line.get("sandbox") == key]


def test_an_upgrade_that_renders_pods_otherwise_keeps_running_sandboxes(
        kubectl, kage, make_namespace, next_build, tmp_path):
    ns = make_namespace("sbx", RESTRICTED)
    key = f"{ns}/keeper"
    create_ready(kubectl, ns, "keeper")
    old = kubectl.json("-n", ns, "get", "pod", "keeper")
    uid = old["metadata"]["uid"]
    assert RENDERING not in old["metadata"]["labels"]
    assert RENDERING not in old["metadata"]["annotations"]
    record = wait_recorded(kubectl, ns, "keeper", uid)
    assert record["digestVersion"] == 1
    assert re.fullmatch(r"[0-9a-f]{16}", record["formDigest"])

    assert kage.stop() == 0
    nxt = Controller(kage.kubeconfig, tmp_path / "next.log", "--http-addr",
                     f"127.0.0.1:{free_port()}", "--log-level", "debug", binary=next_build)
    try:
        nxt.start()
        nxt.wait_synced()
        # Its first reconcile of the sandbox judged the pod: kept.
        wait_for(lambda: verdicts(nxt, key), timeout=CONVERGE,
                 what="the second build to judge the pod")
        assert verdicts(nxt, key)[0] == "keep"
        pod = kubectl.json("-n", ns, "get", "pod", "keeper")
        assert pod["metadata"]["uid"] == uid
        assert "deletionTimestamp" not in pod["metadata"]
        assert RENDERING not in pod["metadata"]["labels"]
        assert pod["metadata"]["annotations"] == old["metadata"]["annotations"]
        assert record_of(kubectl, ns, "keeper") == record
        assert replacements(nxt, key) == []

        # A spec change: a new pod, of the second build's form.
        kubectl.run("-n", ns, "patch", "sandbox", "keeper", "--type=merge",
                    "-p", '{"spec":{"image":"busybox:1.37"}}')
        new = wait_replaced(kubectl, ns, "keeper", uid, "the pod to follow the spec")
        assert new["spec"]["containers"][0]["image"] == "busybox:1.37"
        assert new["metadata"]["labels"][RENDERING] == "next"
        assert new["metadata"]["annotations"][RENDERING] == "next"
        sbx = wait_reason(kubectl, ns, "keeper", "SandboxReady", timeout=CONVERGE)
        assert sbx["status"]["observedGeneration"] == 2
        new_record = wait_recorded(kubectl, ns, "keeper", new["metadata"]["uid"])
        assert new_record["inputsDigest"] != record["inputsDigest"]
        assert new_record["formDigest"] != record["formDigest"]

        # An administrator drops a label kage set: the pod is replaced.
        kubectl.run("-n", ns, "label", "pod", "keeper", f"{RENDERING}-")
        again = wait_replaced(kubectl, ns, "keeper", new["metadata"]["uid"],
                              "the relabelled pod to be replaced")
        assert again["metadata"]["labels"][RENDERING] == "next"
        assert "altered" in verdicts(nxt, key)
        wait_reason(kubectl, ns, "keeper", "SandboxReady", timeout=CONVERGE)
        kept = wait_recorded(kubectl, ns, "keeper", again["metadata"]["uid"])
        assert kept["formDigest"] == new_record["formDigest"]
    finally:
        code = nxt.stop()
        kage.start()
        kage.wait_synced()
    assert code == 0, f"the second build exited {code}; log tail:\n{nxt.log()[-3000:]}"

    # Back on the first build: the second's pod stays. An egress change
    # (which shapes the policy, not the pod) shows the reconcile is done.
    kubectl.run("-n", ns, "patch", "sandbox", "keeper", "--type=merge",
                "-p", '{"spec":{"egress":{"dns":false}}}')
    wait_for(lambda: get(kubectl, ns, "sandbox", "keeper")["status"]["observedGeneration"] == 3,
             timeout=CONVERGE, what="the first build to reconcile the egress change")
    wait_for(lambda: "egress" not in kubectl.json("-n", ns, "get", "networkpolicy",
                                                  "keeper")["spec"],
             timeout=CONVERGE, what="the policy to follow the spec")
    pod = kubectl.json("-n", ns, "get", "pod", "keeper")
    assert pod["metadata"]["uid"] == again["metadata"]["uid"]
    assert "deletionTimestamp" not in pod["metadata"]
    assert pod["metadata"]["labels"][RENDERING] == "next"
    assert record_of(kubectl, ns, "keeper") == kept


def forget_record(kubectl, ns, name):
    """What a status cleared or restored without its record looks like, as
    only an administrator (or kage) may write it."""
    kubectl.run("-n", ns, "patch", "sandbox", name, "--subresource=status", "--type=merge",
                "-p", '{"status":{"podRecord":null}}')
    assert record_of(kubectl, ns, name) is None


def test_a_pod_whose_record_was_lost_is_kept_only_when_it_is_what_kage_renders(
        kubectl, kage, make_namespace, next_build, tmp_path):
    ns = make_namespace("sbx", RESTRICTED)
    key = f"{ns}/unrecorded"
    create_ready(kubectl, ns, "unrecorded")
    uid = kubectl.json("-n", ns, "get", "pod", "unrecorded")["metadata"]["uid"]
    record = wait_recorded(kubectl, ns, "unrecorded", uid)

    # The same build: the pod is what it renders, so it stays and is recorded again.
    assert kage.stop() == 0
    try:
        forget_record(kubectl, ns, "unrecorded")
    finally:
        kage.start()
        kage.wait_synced()
    assert wait_recorded(kubectl, ns, "unrecorded", uid) == record
    assert kubectl.json("-n", ns, "get", "pod", "unrecorded")["metadata"]["uid"] == uid

    # A build that renders it otherwise does not take it on its own word.
    assert kage.stop() == 0
    nxt = Controller(kage.kubeconfig, tmp_path / "next.log", "--http-addr",
                     f"127.0.0.1:{free_port()}", "--log-level", "debug", binary=next_build)
    try:
        forget_record(kubectl, ns, "unrecorded")
        nxt.start()
        nxt.wait_synced()
        new = wait_replaced(kubectl, ns, "unrecorded", uid, "the unrecorded pod to be replaced")
        assert verdicts(nxt, key)[0] == "render"
        assert [line["because"] for line in replacements(nxt, key)] == ["the spec changed"]
        assert new["metadata"]["labels"][RENDERING] == "next"
        wait_recorded(kubectl, ns, "unrecorded", new["metadata"]["uid"])
        wait_reason(kubectl, ns, "unrecorded", "SandboxReady", timeout=CONVERGE)
    finally:
        code = nxt.stop()
        kage.start()
        kage.wait_synced()
    assert code == 0, f"the second build exited {code}; log tail:\n{nxt.log()[-3000:]}"
