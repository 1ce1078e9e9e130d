// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// The Sandboxes of the Argo CD health test, as the controller writes them.
const fixtures = "../argocd/fixtures"

// What kstatus (cli-utils v0.37.2) makes of each fixture, message included.
// kstatus reads, in order: metadata.deletionTimestamp (Terminating);
// status.observedGeneration against metadata.generation, only when
// observedGeneration is present (InProgress); Reconciling=True (InProgress)
// or Stalled=True (Failed), taking their message; then, for a kind it has
// no rules for, the Ready condition: True is Current, False or Unknown
// InProgress; with no Ready condition at all, Current.
var want = map[string]struct {
	status  status.Status
	message string
}{
	"running-ready": {status.CurrentStatus, "Resource is Ready"},
	"creating":      {status.InProgressStatus, "the pod is being scheduled and started"},
	"pending-quota": {status.InProgressStatus, `pods "agent-42" is forbidden: exceeded quota: ` +
		"team-a-quota, requested: limits.memory=1Gi, used: limits.memory=4Gi, limited: limits.memory=4Gi"},
	"failed-oom":   {status.FailedStatus, "the sandbox ran out of memory: it used more than its memory limit of 1Gi"},
	"invalid-spec": {status.FailedStatus, "spec.securityContext.runAsUser: must not be 0 (root); sandboxes never run as root"},
	"name-conflict": {status.FailedStatus, "pod team-a/agent-42 exists and is not owned by this Sandbox; " +
		"kage leaves it alone until it is renamed or removed"},
	"terminating":      {status.TerminatingStatus, "Resource scheduled for deletion"},
	"stale-generation": {status.InProgressStatus, "Sandbox generation is 3, but latest observed generation is 2"},
	// No status at all: nothing tells kstatus that a controller will act
	// (no observedGeneration to compare, no condition), so its generic rule
	// for unknown kinds calls the object Current. Flux can thus pass a
	// Sandbox as healthy in the moment before the controller first writes
	// its status; Argo CD's script (Progressing) does not.
	"no-status": {status.CurrentStatus, "Resource is current"},
	// Settled where the spec asks it to be, but not usable: Ready=False
	// (reasons Paused, Completed, Expired), neither Reconciling nor
	// Stalled. kstatus alone reads any Ready=False as in progress; the
	// Flux example's healthCheckExprs read these as Current (flux_test.go).
	"paused":    {status.InProgressStatus, "the sandbox is paused: it has no pod; the network policies stay"},
	"succeeded": {status.InProgressStatus, "the command exited with code 0"},
	"expired": {status.InProgressStatus, "the sandbox's lifetime ended at 2026-05-04T10:00:00Z; " +
		"its pod was removed and the Sandbox kept (shutdownPolicy Retain)"},
}

func fixtureNames(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtures, err)
	}
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	return names
}

func TestEveryFixtureHasAnExpectation(t *testing.T) {
	names := fixtureNames(t)
	var listed []string
	for name := range want {
		listed = append(listed, name)
	}
	sort.Strings(listed)
	if strings.Join(names, " ") != strings.Join(listed, " ") {
		t.Fatalf("fixtures %v, expectations %v", names, listed)
	}
}

func TestKstatusOfEachSandboxFixture(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(fixtures, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := judge(data)
			if err != nil {
				t.Fatal(err)
			}
			w := want[name]
			exp := verdict{Object: "team-a/agent-42", Status: w.status, Message: w.message}
			if len(got) != 1 || got[0] != exp {
				t.Fatalf("got %+v, want [%+v]", got, exp)
			}
		})
	}
}

// A List (what kubectl get -o json prints) gives one line per item, in order.
func TestListFromStandardInput(t *testing.T) {
	items := []json.RawMessage{}
	names := []string{"running-ready", "failed-oom", "terminating"}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(fixtures, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, data)
	}
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(nil, bytes.NewReader(list), &out); err != nil {
		t.Fatal(err)
	}
	exp := "team-a/agent-42 Current Resource is Ready\n" +
		"team-a/agent-42 Failed the sandbox ran out of memory: it used more than its memory limit of 1Gi\n" +
		"team-a/agent-42 Terminating Resource scheduled for deletion\n"
	if out.String() != exp {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), exp)
	}
}

func TestFileArgumentAndClusterScopedName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "class.json")
	obj := `{"apiVersion": "kage.dev/v1alpha1", "kind": "SandboxClass",
		"metadata": {"name": "small", "generation": 1}, "spec": {}}`
	if err := os.WriteFile(path, []byte(obj), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{path}, strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "small Current Resource is current\n" {
		t.Fatalf("got %q", out.String())
	}
}

func TestBadInputIsAnError(t *testing.T) {
	for name, in := range map[string]string{
		"not json": "{",
		"no kind":  `{"apiVersion": "v1", "metadata": {"name": "x"}}`,
		"bad generation": `{"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox",
			"metadata": {"name": "x", "generation": 1}, "status": {"observedGeneration": "one"}}`,
	} {
		if err := run(nil, strings.NewReader(in), &bytes.Buffer{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := run([]string{"a", "b"}, strings.NewReader(""), &bytes.Buffer{}); err == nil {
		t.Error("two arguments: no error")
	}
}
