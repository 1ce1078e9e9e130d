// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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

// A new Sandbox gets its policy, then its pod; its pod running marks it
// Ready once; a Sandbox already Ready gets nothing. A pod seen running
// before its Sandbox (at start) marks the Sandbox Ready when it comes.
func TestSandboxWritesThenReady(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{sandboxGVR: "SandboxList"})
	var mu sync.Mutex
	var actions []string
	done := make(chan struct{}, 16)
	client.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		rec := a.GetVerb() + " " + a.GetResource().Resource
		if s := a.GetSubresource(); s != "" {
			rec += "/" + s
		}
		switch a := a.(type) {
		case k8stesting.CreateAction:
			u := a.GetObject().(*unstructured.Unstructured)
			rec += " " + u.GetName()
			if a.GetResource().Resource == "pods" {
				done <- struct{}{}
			}
		case k8stesting.PatchAction:
			rec += " " + a.GetName() + " " + string(a.GetPatch())
			done <- struct{}{}
		}
		actions = append(actions, rec)
		return true, nil, nil
	})
	ns := "ns1"
	f := &floor{
		ns:        ns,
		sandboxes: client.Resource(sandboxGVR).Namespace(ns),
		pods:      client.Resource(podGVR).Namespace(ns),
		policies:  client.Resource(policyGVR).Namespace(ns),
		pod:       map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "__NAME__"}},
		policy:    map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": map[string]any{"name": "__NAME__"}},
		known:     map[string]*sandbox{},
		orphans:   map[string]string{},
	}
	sb := func(name string, ready bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetName(name)
		u.SetUID(types.UID("uid-" + name))
		u.SetGeneration(3)
		if ready {
			u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}
		}
		return u
	}
	pod := func(name, phase string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"phase": phase}}}
		u.SetName(name)
		u.SetLabels(map[string]string{sandboxKey: name})
		return u
	}
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := actions
		actions = nil
		return out
	}
	readyPatch := func(name string) string {
		return "patch sandboxes/status " + name + ` {"status":{"conditions":[{"lastTransitionTime":"T",` +
			`"message":"the sandbox's pod is running","observedGeneration":3,"reason":"Running","status":"True","type":"Ready"}],` +
			`"observedGeneration":3,"phase":"Running","podName":"` + name + `"}}`
	}
	stamp := regexp.MustCompile(`"lastTransitionTime":"[^"]*"`)
	norm := func(xs []string) []string {
		for i := range xs {
			xs[i] = stamp.ReplaceAllString(xs[i], `"lastTransitionTime":"T"`)
		}
		return xs
	}

	f.onSandbox(watch.Added, sb("a", false))
	f.onSandbox(watch.Modified, sb("a", false)) // not new: nothing more
	f.onSandbox(watch.Added, sb("r", true))     // Ready already: nothing
	<-done
	if got, want := take(), []string{"create networkpolicies a", "create pods a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q", got, want)
	}
	f.onPod(watch.Added, pod("a", "Pending"))
	f.onPod(watch.Modified, pod("a", "Running"))
	<-done
	f.onPod(watch.Modified, pod("a", "Running")) // once per Sandbox
	f.onPod(watch.Modified, pod("r", "Running"))
	if got, want := norm(take()), []string{readyPatch("a")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q", got, want)
	}

	f.onPod(watch.Added, pod("o", "Running")) // before its Sandbox
	f.onSandbox(watch.Added, sb("o", false))
	<-done
	<-done
	if got, want := norm(take()), []string{"create networkpolicies o", "create pods o", readyPatch("o")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %q, want %q", got, want)
	}
}
