// SPDX-License-Identifier: Apache-2.0

package main

import (
	"reflect"
	"testing"
)

func TestObjectRendersNameAndOwner(t *testing.T) {
	f := &floor{ns: "ns1"}
	tmpl := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "__NAME__", "labels": map[string]any{"kage.dev/sandbox": "__NAME__", "x-__NAME__": "a"}},
		"spec":     map[string]any{"args": []any{"pre-__NAME__-post", int64(5), true}},
	}
	u := f.object(tmpl, "sb1", "uid-1")
	want := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{
			"name": "sb1", "namespace": "ns1",
			"labels": map[string]any{"kage.dev/sandbox": "sb1", "x-sb1": "a"},
			"ownerReferences": []any{map[string]any{
				"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox", "name": "sb1", "uid": "uid-1",
				"controller": true, "blockOwnerDeletion": true,
			}},
		},
		"spec": map[string]any{"args": []any{"pre-sb1-post", int64(5), true}},
	}
	if !reflect.DeepEqual(u.Object, want) {
		t.Fatalf("object:\n got %#v\nwant %#v", u.Object, want)
	}
	// The template is not changed: the next Sandbox renders from it too.
	if tmpl["metadata"].(map[string]any)["name"] != "__NAME__" {
		t.Fatalf("template changed: %#v", tmpl)
	}
	if _, ok := tmpl["metadata"].(map[string]any)["namespace"]; ok {
		t.Fatalf("template changed: %#v", tmpl)
	}
}
