// SPDX-License-Identifier: Apache-2.0

// Command kstatus prints how kstatus (sigs.k8s.io/cli-utils/pkg/kstatus,
// the health rules of Flux and kpt) reads Kubernetes objects: one line per
// object, "<namespace>/<name> <status> <message>" (the name alone for a
// cluster-scoped object). It reads one object or a List as JSON, from the
// file named as its argument or from standard input.
//
//	kubectl get sandboxes -A -o json | kstatus
//	kstatus tests/argocd/fixtures/failed-oom.json
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// verdict is kstatus's reading of one object.
type verdict struct {
	Object  string // <namespace>/<name>, or <name>
	Status  status.Status
	Message string
}

func (v verdict) String() string {
	return strings.TrimRight(fmt.Sprintf("%s %s %s", v.Object, v.Status, v.Message), " ")
}

// judge decodes data (one object or a List, as JSON) and computes each
// object's kstatus. The decoder keeps integers as int64, as kstatus's
// observedGeneration check needs (plain encoding/json makes them float64,
// and kstatus then fails with an error).
func judge(data []byte) ([]verdict, error) {
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	var items []unstructured.Unstructured
	switch o := obj.(type) {
	case *unstructured.UnstructuredList:
		items = o.Items
	case *unstructured.Unstructured:
		items = []unstructured.Unstructured{*o}
	default:
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	out := make([]verdict, 0, len(items))
	for i := range items {
		u := &items[i]
		res, err := status.Compute(u)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		name := u.GetName()
		if ns := u.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		out = append(out, verdict{Object: name, Status: res.Status, Message: res.Message})
	}
	return out, nil
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	var data []byte
	var err error
	switch {
	case len(args) > 1:
		return fmt.Errorf("usage: kstatus [FILE.json]   (standard input when no FILE or FILE is -)")
	case len(args) == 1 && args[0] != "-":
		data, err = os.ReadFile(args[0])
	default:
		data, err = io.ReadAll(stdin)
	}
	if err != nil {
		return err
	}
	verdicts, err := judge(data)
	if err != nil {
		return err
	}
	for _, v := range verdicts {
		if _, err := fmt.Fprintln(stdout, v); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
