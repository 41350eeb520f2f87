package server

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// Spans per request on both protocols: a server span continuing the caller's traceparent,
// with the stages as children; the trace id is the request id.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	cfg := testConfig()
	cfg.TracerProvider = tp
	b := serveBoth(t, cfg, tinyModel(t), nil, nil)
	size := spec.Tiny().ImageSize

	const traceHTTP = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodPost, b.url+"/v2/models/artnet/infer", bytes.NewReader(inferBody(t, []int{1, 3, size, size}, runtimetest.Images(1, size, 1), "")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Traceparent", "00-"+traceHTTP+"-00f067aa0ba902b7-01")
	resp, body := do(t, req, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Request-Id"); got != traceHTTP {
		t.Errorf("X-Request-Id %q, want the trace id %s", got, traceHTTP)
	}

	const traceGRPC = "0af7651916cd43dd8448eb211c80319c"
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceGRPC+"-b7ad6b7169203331-01")
	if _, err := b.client.ModelInfer(ctx, tensorRequest(runtimetest.Images(1, size, 2), 1, size, true), grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != traceGRPC {
		t.Errorf("x-request-id %v, want the trace id %s", got, traceGRPC)
	}

	waitFor(t, "spans ended", func() bool { return len(rec.Ended()) >= 10 })
	byTrace := map[string][]string{}
	for _, sp := range rec.Ended() {
		id := sp.SpanContext().TraceID().String()
		byTrace[id] = append(byTrace[id], sp.Name())
	}
	for trace, want := range map[string][]string{
		traceHTTP: {"POST /v2/models/artnet/infer", "receive body", "queue wait", "batch run", "respond"},
		traceGRPC: {grpcService + "ModelInfer", "receive body", "queue wait", "batch run", "respond"},
	} {
		got := byTrace[trace]
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("trace %s: spans %v lack %q", trace, got, w)
			}
		}
	}
	// The server span continues the caller's: its parent is the traceparent's span.
	for _, sp := range rec.Ended() {
		if sp.Name() == "POST /v2/models/artnet/infer" && sp.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("HTTP server span's parent %s, want the traceparent's span", sp.Parent().SpanID())
		}
		if strings.HasSuffix(sp.Name(), "ModelInfer") && sp.Parent().SpanID().String() != "b7ad6b7169203331" {
			t.Errorf("gRPC server span's parent %s, want the traceparent's span", sp.Parent().SpanID())
		}
	}
}
