package caddymodule

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The jit_auth metrics are the process's: a configuration loaded by
// `caddy reload` (a new registry) registers the same collectors, so its
// /metrics goes on from where the old configuration's left off;
// registering twice in one registry is no error.
func TestMetricsSurviveANewRegistry(t *testing.T) {
	m := processMetrics()
	var cur0 dto.Metric
	if err := m.logouts.WithLabelValues("reload-test").Write(&cur0); err != nil {
		t.Fatal(err)
	}
	before := cur0.GetCounter().GetValue()
	old, cur := prometheus.NewRegistry(), prometheus.NewRegistry()
	if err := m.register(old); err != nil {
		t.Fatal(err)
	}
	m.record(event{kind: eventLoggedOut, connection: "reload-test"})
	for range 2 {
		if err := m.register(cur); err != nil {
			t.Fatalf("registering in the new registry: %v", err)
		}
	}
	m.record(event{kind: eventLoggedOut, connection: "reload-test"})
	families, err := cur.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, f := range families {
		if f.GetName() != "jit_auth_logouts_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			if len(mt.GetLabel()) == 1 && mt.GetLabel()[0].GetValue() == "reload-test" {
				got = mt.GetCounter().GetValue()
			}
		}
	}
	if got != before+2 {
		t.Errorf("the new registry's logouts: %v, want %v (both logouts, one before it existed)", got, before+2)
	}
}
