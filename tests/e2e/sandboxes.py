# SPDX-License-Identifier: Apache-2.0
"""Reading Sandboxes and their children as a user does (kubectl get), for
the e2e suites: an object or None, a condition, and waiting for a reason."""

import json

from conftest import wait_for


def get(kubectl, ns, kind, name):
    """The object (namespaced unless ns is None), or None when it does not
    exist."""
    args = ("get", kind, name, "-o", "json", "--ignore-not-found")
    proc = kubectl.run(*(("-n", ns) if ns else ()), *args, check=False)
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout.strip():
        return None
    return json.loads(proc.stdout)


def condition(sbx, ctype):
    for c in (sbx or {}).get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


def wait_reason(kubectl, ns, name, reason, timeout=15):
    """Waits until the Sandbox's Ready condition has reason for its current
    generation; returns the Sandbox."""
    seen = {}

    def check():
        s = get(kubectl, ns, "sandbox", name)
        seen["status"] = (s or {}).get("status")
        c = condition(s, "Ready")
        if c and c["reason"] == reason and \
                s["status"].get("observedGeneration") == s["metadata"]["generation"]:
            return s
        return None
    try:
        return wait_for(check, timeout=timeout, what=f"sandbox {ns}/{name} to say {reason}")
    except AssertionError as e:
        raise AssertionError(f"{e}; its status: {seen.get('status')}") from None
