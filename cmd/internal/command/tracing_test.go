package command

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is set up; with it, spans are exported over
// OTLP/HTTP to that endpoint (a local receiver here) when the provider shuts down.
func TestSetupTracing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, shutdown, err := setupTracing(context.Background())
	if err != nil || tp != nil {
		t.Fatalf("without an endpoint: %v %v, want no provider", tp, err)
	}
	_ = shutdown(context.Background())

	var posts atomic.Int32
	var path atomic.Value
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		posts.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	tp, shutdown, err = setupTracing(context.Background())
	if err != nil || tp == nil {
		t.Fatalf("with an endpoint: %v %v", tp, err)
	}
	_, sp := tp.Tracer("test").Start(context.Background(), "one")
	sp.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 || path.Load() != "/v1/traces" {
		t.Fatalf("the OTLP receiver got %d posts (last path %v), want spans at /v1/traces", posts.Load(), path.Load())
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, _, err := setupTracing(context.Background()); err == nil {
		t.Errorf("an unknown protocol was accepted")
	}
}
