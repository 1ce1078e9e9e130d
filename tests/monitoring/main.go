// SPDX-License-Identifier: Apache-2.0

// Command monitoring-check checks kage's monitoring package against a
// scrape of the controller's /metrics:
//
//	monitoring-check -metrics scrape.txt -rules prometheusrule.yaml -dashboard dash.json
//
// It fails (exit 1, one line per problem) when the PrometheusRule's groups
// do not parse and validate as Prometheus rules, when a dashboard query is
// not PromQL, when a rule or a panel names a metric the scrape does not
// hold, or when the scrape breaks Prometheus's metric naming lint.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// ruleGroups reads the groups of a PrometheusRule manifest as the rule
// file Prometheus would load.
func ruleGroups(manifest []byte) ([]byte, error) {
	var obj struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups json.RawMessage `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(manifest, &obj); err != nil {
		return nil, err
	}
	if obj.Kind != "PrometheusRule" || len(obj.Spec.Groups) == 0 {
		return nil, fmt.Errorf("not a PrometheusRule with spec.groups")
	}
	return yaml.JSONToYAML([]byte(`{"groups":` + string(obj.Spec.Groups) + `}`))
}

// metricNames collects the metric names an expression selects.
func metricNames(p parser.Parser, expr string, into map[string]bool) error {
	e, err := p.ParseExpr(expr)
	if err != nil {
		return err
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" {
			into[vs.Name] = true
		}
		return nil
	})
	return nil
}

// dashboardExprs returns every "expr" of a Grafana dashboard's panels'
// targets, with Grafana's interval variables made concrete.
func dashboardExprs(dash []byte) ([]string, error) {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			if t.Expr == "" {
				continue
			}
			e := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m",
				"$__range", "1h", "$namespace", "x").Replace(t.Expr)
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no panel has a query")
	}
	return out, nil
}

// exposed reads a /metrics scrape: the families it holds (a histogram's
// _bucket, _sum and _count answer to its name and to theirs).
func exposed(scrape []byte) (map[string]bool, error) {
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(scrape))
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for name, f := range fams {
		names[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
		}
	}
	return names, nil
}

func check(scrape, rules, dash []byte, out io.Writer) int {
	problems := 0
	say := func(f string, a ...any) {
		fmt.Fprintf(out, f+"\n", a...)
		problems++
	}
	p := parser.NewParser(parser.Options{})
	wanted := map[string]bool{}

	groups, err := ruleGroups(rules)
	if err != nil {
		say("rules: %v", err)
	} else {
		rg, errs := rulefmt.Parse(groups, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
		for _, e := range errs {
			say("rules: %v", e)
		}
		if rg != nil {
			for _, g := range rg.Groups {
				for _, r := range g.Rules {
					if err := metricNames(p, r.Expr, wanted); err != nil {
						say("rule %s: %v", r.Alert, err)
					}
				}
			}
		}
	}
	exprs, err := dashboardExprs(dash)
	if err != nil {
		say("dashboard: %v", err)
	}
	for _, e := range exprs {
		if err := metricNames(p, e, wanted); err != nil {
			say("dashboard query %q: %v", e, err)
		}
	}

	have, err := exposed(scrape)
	if err != nil {
		say("metrics: %v", err)
	}
	var missing []string
	for name := range wanted {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		say("%s is named by a rule or panel but not exposed by the controller", name)
	}
	lint, err := promlint.New(bytes.NewReader(scrape)).Lint()
	if err != nil {
		say("promlint: %v", err)
	}
	for _, pr := range lint {
		say("promlint: %s: %s", pr.Metric, pr.Text)
	}
	return problems
}

func main() {
	metrics := flag.String("metrics", "", "a scrape of the controller's /metrics")
	rules := flag.String("rules", "", "the PrometheusRule manifest")
	dash := flag.String("dashboard", "", "the Grafana dashboard JSON")
	flag.Parse()
	var data [3][]byte
	for i, path := range []string{*metrics, *rules, *dash} {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		data[i] = b
	}
	if n := check(data[0], data[1], data[2], os.Stdout); n > 0 {
		fmt.Printf("%d problem(s)\n", n)
		os.Exit(1)
	}
	fmt.Println("ok")
}
