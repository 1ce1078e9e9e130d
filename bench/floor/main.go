// SPDX-License-Identifier: Apache-2.0

// kage-floor is the "perfect controller" floor of bench/: an ideal Sandbox
// controller with no queue, no rate limit and no delay, so that the
// benchmark can tell the time kage adds from the time the cluster itself
// takes. It is a measuring stick for bench/, not a controller to use: it
// writes the objects it is given, marks a Sandbox Ready as soon as its pod
// runs, and does nothing else (no updates, no deletes, no validation).
//
//	kage-floor --kubeconfig FILE --namespace NS --objects FILE
//
// The objects file is {"pod": {...}, "policy": {...}} and optionally
// "baseline": {...}: the bodies kage writes for a Sandbox, with the string
// __NAME__ wherever the Sandbox's name goes; the baseline (kage's
// per-namespace policy) is created once at start. For each Sandbox not yet
// Ready, the policy and then the pod are created at once, each with the
// Sandbox as controlling owner; when a pod with the kage.dev/sandbox label
// first runs, its Sandbox's status is patched to Ready=True. "caches synced"
// goes to stderr once both watches are established.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	placeholder = "__NAME__"
	sandboxKey  = "kage.dev/sandbox"
	tries       = 5
)

var (
	sandboxGVR = schema.GroupVersionResource{Group: "kage.dev", Version: "v1alpha1", Resource: "sandboxes"}
	podGVR     = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	policyGVR  = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}
)

// sandbox is what the floor remembers of one Sandbox (by name).
type sandbox struct {
	uid        types.UID
	generation int64
	ready      bool // Ready=True seen, or patched by us
	patching   bool // a status patch is in flight
}

type floor struct {
	ns        string
	sandboxes dynamic.ResourceInterface
	pods      dynamic.ResourceInterface
	policies  dynamic.ResourceInterface
	pod       map[string]any
	policy    map[string]any

	mu    sync.Mutex
	known map[string]*sandbox
	// running pods whose Sandbox was not known yet (at start, the pod list
	// may come before the Sandbox list), by Sandbox name
	orphans map[string]string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	namespace := flag.String("namespace", "", "the namespace served (required)")
	objects := flag.String("objects", "", `JSON file {"pod": {...}, "policy": {...}[, "baseline": {...}]} with __NAME__ for the Sandbox's name (required)`)
	flag.Parse()
	if *kubeconfig == "" || *namespace == "" || *objects == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*kubeconfig, *namespace, *objects); err != nil {
		logf("kage-floor: %v", err)
		os.Exit(1)
	}
}

func run(kubeconfig, ns, objectsFile string) error {
	raw, err := os.ReadFile(objectsFile)
	if err != nil {
		return err
	}
	var objs struct {
		Pod      map[string]any `json:"pod"`
		Policy   map[string]any `json:"policy"`
		Baseline map[string]any `json:"baseline"`
	}
	if err := json.Unmarshal(raw, &objs); err != nil {
		return fmt.Errorf("%s: %w", objectsFile, err)
	}
	if err := checkKind(objs.Pod, "v1", "Pod"); err != nil {
		return fmt.Errorf("%s: pod: %w", objectsFile, err)
	}
	if err := checkKind(objs.Policy, "networking.k8s.io/v1", "NetworkPolicy"); err != nil {
		return fmt.Errorf("%s: policy: %w", objectsFile, err)
	}
	if objs.Baseline != nil {
		if err := checkKind(objs.Baseline, "networking.k8s.io/v1", "NetworkPolicy"); err != nil {
			return fmt.Errorf("%s: baseline: %w", objectsFile, err)
		}
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS = -1 // no client-side rate limiter at all
	cfg.Burst = 1 << 20
	cfg.UserAgent = "kage-floor"
	cfg.WarningHandler = rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f := &floor{
		ns:        ns,
		sandboxes: client.Resource(sandboxGVR).Namespace(ns),
		pods:      client.Resource(podGVR).Namespace(ns),
		policies:  client.Resource(policyGVR).Namespace(ns),
		pod:       objs.Pod,
		policy:    objs.Policy,
		known:     map[string]*sandbox{},
		orphans:   map[string]string{},
	}
	if objs.Baseline != nil {
		b := &unstructured.Unstructured{Object: objs.Baseline}
		b.SetNamespace(ns)
		if err := f.create(ctx, f.policies, b); err != nil {
			return fmt.Errorf("create baseline policy %s: %w", b.GetName(), err)
		}
	}

	var established sync.WaitGroup
	established.Add(2)
	go f.serve(ctx, "sandboxes", f.sandboxes, metav1.ListOptions{}, established.Done, f.onSandbox)
	go f.serve(ctx, "pods", f.pods, metav1.ListOptions{LabelSelector: sandboxKey}, established.Done, f.onPod)
	synced := make(chan struct{})
	go func() { established.Wait(); close(synced) }()
	select {
	case <-synced:
		logf("caches synced")
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}

func checkKind(obj map[string]any, apiVersion, kind string) error {
	if obj == nil {
		return fmt.Errorf("missing")
	}
	u := unstructured.Unstructured{Object: obj}
	if u.GetAPIVersion() != apiVersion || u.GetKind() != kind {
		return fmt.Errorf("want apiVersion %s, kind %s; have %q, %q", apiVersion, kind, u.GetAPIVersion(), u.GetKind())
	}
	return nil
}

// serve lists, then watches from the list's resourceVersion, and hands every
// object to handle, forever: a watch that ends is resumed from the last
// resourceVersion seen, and one that is too old (410 Gone) is relisted.
// ready is called once, when the first watch is established.
func (f *floor) serve(ctx context.Context, what string, ri dynamic.ResourceInterface, opts metav1.ListOptions,
	ready func(), handle func(watch.EventType, *unstructured.Unstructured)) {
	var once sync.Once
	for ctx.Err() == nil {
		list, err := ri.List(ctx, opts)
		if err != nil {
			if ctx.Err() == nil {
				logf("error: list %s in %s: %v", what, f.ns, err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for i := range list.Items {
			handle(watch.Added, &list.Items[i])
		}
		rv := list.GetResourceVersion()
		for ctx.Err() == nil {
			wopts := opts
			wopts.ResourceVersion = rv
			wopts.AllowWatchBookmarks = true
			w, err := ri.Watch(ctx, wopts)
			if err != nil {
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					break
				}
				if ctx.Err() == nil {
					logf("error: watch %s in %s: %v", what, f.ns, err)
					sleep(ctx, time.Second)
				}
				continue
			}
			once.Do(ready)
			gone := false
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					err := apierrors.FromObject(ev.Object)
					if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
						gone = true
					} else if ctx.Err() == nil {
						logf("error: watch %s in %s: %v", what, f.ns, err)
					}
					break
				}
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				rv = u.GetResourceVersion()
				if ev.Type != watch.Bookmark {
					handle(ev.Type, u)
				}
			}
			w.Stop()
			if gone {
				break
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func readyTrue(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}

// onSandbox starts the writes for a Sandbox seen for the first time that is
// not Ready yet.
func (f *floor) onSandbox(t watch.EventType, u *unstructured.Unstructured) {
	name, uid := u.GetName(), u.GetUID()
	f.mu.Lock()
	s := f.known[name]
	if t == watch.Deleted {
		if s != nil && s.uid == uid {
			delete(f.known, name)
		}
		f.mu.Unlock()
		return
	}
	fresh := s == nil || s.uid != uid
	if fresh {
		s = &sandbox{uid: uid}
		f.known[name] = s
	}
	s.generation = u.GetGeneration()
	if readyTrue(u) {
		s.ready = true
	}
	start := fresh && !s.ready
	podName, running := f.orphans[name]
	if start && running {
		delete(f.orphans, name)
		s.patching = true
	}
	gen := s.generation
	f.mu.Unlock()
	if start {
		go func() {
			f.write(name, uid)
			if running {
				f.markReady(name, s, gen, podName)
			}
		}()
	}
}

// render replaces __NAME__ in every string (and key) of tree.
func render(v any, name string) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, placeholder, name)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.ReplaceAll(k, placeholder, name)] = render(e, name)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = render(e, name)
		}
		return out
	default:
		return v
	}
}

func (f *floor) object(tmpl map[string]any, name string, uid types.UID) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: render(tmpl, name).(map[string]any)}
	u.SetNamespace(f.ns)
	yes := true
	u.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: "kage.dev/v1alpha1", Kind: "Sandbox", Name: name, UID: uid,
		Controller: &yes, BlockOwnerDeletion: &yes,
	}})
	return u
}

// write creates the Sandbox's NetworkPolicy, then its pod: the pod never
// exists without its policy.
func (f *floor) write(name string, uid types.UID) {
	ctx := context.Background()
	policy := f.object(f.policy, name, uid)
	if err := f.create(ctx, f.policies, policy); err != nil {
		logf("error: create networkpolicy %s/%s (sandbox %s): %v", f.ns, policy.GetName(), name, err)
		return
	}
	pod := f.object(f.pod, name, uid)
	if err := f.create(ctx, f.pods, pod); err != nil {
		logf("error: create pod %s/%s (sandbox %s): %v", f.ns, pod.GetName(), name, err)
	}
}

// create creates obj; AlreadyExists counts as done. Other errors are logged
// and retried a few times.
func (f *floor) create(ctx context.Context, ri dynamic.ResourceInterface, obj *unstructured.Unstructured) error {
	var err error
	for i := 0; i < tries; i++ {
		if i > 0 {
			logf("error: create %s %s/%s (retrying): %v", obj.GetKind(), f.ns, obj.GetName(), err)
			sleep(ctx, time.Duration(i)*200*time.Millisecond)
		}
		_, err = ri.Create(ctx, obj, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
	}
	return err
}

// onPod marks the pod's Sandbox Ready the first time the pod is seen running.
func (f *floor) onPod(t watch.EventType, u *unstructured.Unstructured) {
	name := u.GetLabels()[sandboxKey]
	if name == "" {
		return
	}
	if t == watch.Deleted {
		f.mu.Lock()
		if f.orphans[name] == u.GetName() {
			delete(f.orphans, name)
		}
		f.mu.Unlock()
		return
	}
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	if phase != "Running" {
		return
	}
	f.mu.Lock()
	s := f.known[name]
	if s == nil {
		// Its Sandbox is not seen yet: onSandbox marks it Ready then.
		f.orphans[name] = u.GetName()
		f.mu.Unlock()
		return
	}
	if s.ready || s.patching {
		f.mu.Unlock()
		return
	}
	s.patching = true
	gen := s.generation
	f.mu.Unlock()
	go f.markReady(name, s, gen, u.GetName())
}

func (f *floor) markReady(name string, s *sandbox, gen int64, podName string) {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"conditions": []any{map[string]any{
			"type": "Ready", "status": "True", "reason": "Running",
			"message":            "the sandbox's pod is running",
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
			"observedGeneration": gen,
		}},
		"phase":              "Running",
		"observedGeneration": gen,
		"podName":            podName,
	}})
	if err == nil {
		ctx := context.Background()
		for i := 0; i < tries; i++ {
			if i > 0 {
				logf("error: patch sandbox %s/%s status (retrying): %v", f.ns, name, err)
				sleep(ctx, time.Duration(i)*200*time.Millisecond)
			}
			_, err = f.sandboxes.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
			if err == nil || apierrors.IsNotFound(err) {
				break
			}
		}
	}
	f.mu.Lock()
	s.patching = false
	if err == nil {
		s.ready = true
	}
	f.mu.Unlock()
	if err != nil && !apierrors.IsNotFound(err) {
		logf("error: patch sandbox %s/%s status: %v", f.ns, name, err)
	}
}
