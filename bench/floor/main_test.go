// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
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

// serve resumes a watch that ends from the last resourceVersion it saw, and
// relists after a 410 Gone.
func TestServeResumesAndRelists(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{sandboxGVR: "SandboxList"})
	var mu sync.Mutex
	lists, watchRVs := 0, []string{}
	client.PrependReactor("list", "sandboxes", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		lists++
		l := &unstructured.UnstructuredList{}
		l.SetResourceVersion(fmt.Sprintf("%d0", lists))
		return true, l, nil
	})
	watchers := make(chan *watch.FakeWatcher, 8)
	client.PrependWatchReactor("sandboxes", func(a k8stesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		watchRVs = append(watchRVs, a.(k8stesting.WatchActionImpl).GetWatchRestrictions().ResourceVersion)
		mu.Unlock()
		w := watch.NewFake()
		watchers <- w
		return true, w, nil
	})
	obj := func(name, rv string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetName(name)
		u.SetResourceVersion(rv)
		return u
	}
	seen := make(chan string, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	f := &floor{ns: "ns1"}
	go f.serve(ctx, "sandboxes", client.Resource(sandboxGVR).Namespace("ns1"), metav1.ListOptions{},
		func() { close(ready) }, func(_ watch.EventType, u *unstructured.Unstructured) { seen <- u.GetName() })

	w := <-watchers
	<-ready
	w.Add(obj("a", "11"))
	if got := <-seen; got != "a" {
		t.Fatalf("seen %q, want a", got)
	}
	w.Stop() // the server ends the watch
	w = <-watchers
	w.Add(obj("b", "12"))
	if got := <-seen; got != "b" {
		t.Fatalf("seen %q, want b", got)
	}
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired})
	w = <-watchers
	w.Add(obj("c", "21"))
	if got := <-seen; got != "c" {
		t.Fatalf("seen %q, want c", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if lists != 2 || !reflect.DeepEqual(watchRVs, []string{"10", "11", "20"}) {
		t.Fatalf("lists %d, watches from %v; want 2 lists, watches from [10 11 20]", lists, watchRVs)
	}
}
