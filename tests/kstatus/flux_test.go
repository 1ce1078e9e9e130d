// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The Flux Kustomization example whose healthCheckExprs are checked here.
const fluxExample = "../../manifests/examples/flux/kustomization.yaml"

// What Flux makes of each fixture with the example's expressions: the
// settled phases are Current although Ready is False, and a Sandbox with
// no status yet waits for the controller (kstatus alone says Current).
var wantFlux = map[string]string{
	"running-ready":    "Current",
	"creating":         "InProgress",
	"pending-quota":    "InProgress",
	"failed-oom":       "Failed",
	"invalid-spec":     "Failed",
	"name-conflict":    "Failed",
	"terminating":      "InProgress",
	"stale-generation": "InProgress",
	"no-status":        "InProgress",
	"paused":           "Current",
	"succeeded":        "Current",
	"expired":          "Current",
}

type healthExprs struct {
	current, failed string
}

// sandboxExprs reads the Sandbox entry of the example's healthCheckExprs.
func sandboxExprs(t *testing.T) healthExprs {
	t.Helper()
	f, err := os.Open(fluxExample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ks map[string]any
	if err := k8syaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&ks); err != nil {
		t.Fatal(err)
	}
	list, _, _ := unstructured.NestedSlice(ks, "spec", "healthCheckExprs")
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m["apiVersion"] == "kage.dev/v1alpha1" && m["kind"] == "Sandbox" {
			cur, _ := m["current"].(string)
			failed, _ := m["failed"].(string)
			if cur == "" || failed == "" {
				t.Fatalf("the Sandbox entry lacks current or failed: %v", m)
			}
			return healthExprs{cur, failed}
		}
	}
	t.Fatalf("%s has no healthCheckExprs entry for kage.dev/v1alpha1 Sandbox", fluxExample)
	return healthExprs{}
}

// eval evaluates one expression as Flux does: the object's top-level
// fields are the variables, optional field selection is on.
func eval(t *testing.T, expr string, obj map[string]any) bool {
	t.Helper()
	env, err := cel.NewEnv(cel.OptionalTypes(),
		cel.Variable("apiVersion", cel.DynType), cel.Variable("kind", cel.DynType),
		cel.Variable("metadata", cel.DynType), cel.Variable("spec", cel.DynType),
		cel.Variable("status", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("%q: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"status": map[string]any{}}
	for k, v := range obj {
		vars[k] = v
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		t.Fatalf("%q gives %v, not a bool", expr, out)
	}
	return b
}

func TestFluxHealthExpressionsOnEachFixture(t *testing.T) {
	exprs := sandboxExprs(t)
	names := fixtureNames(t)
	if len(names) != len(wantFlux) {
		t.Fatalf("fixtures %v, Flux expectations for %d", names, len(wantFlux))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(fixtures, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(data); err != nil {
				t.Fatal(err)
			}
			cur, failed := eval(t, exprs.current, u.Object), eval(t, exprs.failed, u.Object)
			got := "InProgress"
			switch {
			case cur && failed:
				t.Fatalf("both current and failed hold")
			case cur:
				got = "Current"
			case failed:
				got = "Failed"
			}
			want, ok := wantFlux[name]
			if !ok || got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}
