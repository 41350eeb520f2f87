package server

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/metadata"
)

// Tracing: OpenTelemetry spans per request, through Config.TracerProvider (nil: none; the
// serve command builds an OTLP exporter from the standard OTEL_* variables). A request's
// server span continues the caller's trace (W3C traceparent: the HTTP header, or the gRPC
// metadata key), and its trace id becomes the request id when no X-Request-Id is given. The
// children are the stages a request goes through:
//
//	receive body  reading (and, for v2 JSON, parsing) the body; for gRPC, from the stream's
//	              opening (the tap) to the handler
//	decode        image files decoded and preprocessed (image_bytes)
//	queue wait    from the batcher's queue to the start of the model run
//	batch run     the model run the request was part of (batch size, model version)
//	respond       building and writing the answer

const tracerName = "github.com/artnet/artnet/server"

var propagator = propagation.TraceContext{}

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startHTTPSpan starts the server span of an HTTP request, continuing its traceparent.
func (s *Server) startHTTPSpan(r *http.Request) (context.Context, trace.Span) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return s.tracer.Start(ctx, r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
}

// startGRPCSpan starts the server span of a gRPC call, continuing the traceparent metadata.
func (s *Server) startGRPCSpan(ctx context.Context, method string) (context.Context, trace.Span) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = propagator.Extract(ctx, metadataCarrier(md))
	}
	return s.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.method", method)))
}

// traceID is the span's trace id when it continues a caller's trace ("" otherwise).
func traceID(sp trace.Span) string {
	if sc := sp.SpanContext(); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// stage starts a child span of ctx; end it with endStage.
func (s *Server) stage(ctx context.Context, name string) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, name)
}

// stageAt records a finished child span from start to end.
func stageAt(tr trace.Tracer, ctx context.Context, name string, start, end time.Time, attrs ...attribute.KeyValue) {
	_, sp := tr.Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	sp.End(trace.WithTimestamp(end))
}

// endStage ends sp, marking it failed with err.
func endStage(sp trace.Span, err error) {
	if err != nil {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.End()
}

// metadataCarrier reads gRPC metadata for the propagator.
type metadataCarrier metadata.MD

func (m metadataCarrier) Get(key string) string {
	if v := metadata.MD(m).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (m metadataCarrier) Set(key, value string) { metadata.MD(m).Set(key, value) }
func (m metadataCarrier) Keys() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
