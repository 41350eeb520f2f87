package command

import (
	"context"
	"fmt"
	"github.com/artnet/artnet/internal/envvar"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// setupTracing builds the OpenTelemetry tracer provider of serve from the standard variables:
// nothing (nil, no exporter, no goroutine) unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and OTEL_SDK_DISABLED is not true. The exporter is
// OTLP over HTTP/protobuf, or gRPC with OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL=grpc; endpoint,
// headers, timeout, TLS (OTEL_EXPORTER_OTLP_*), sampler (OTEL_TRACES_SAMPLER) and resource
// (OTEL_SERVICE_NAME, default "artnet-serve"; OTEL_RESOURCE_ATTRIBUTES) are read by the SDK
// itself. shutdown flushes the spans still batched.
func setupTracing(ctx context.Context) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	if envvar.OTLPEndpoint.Get() == "" && envvar.OTLPTracesEndpoint.Get() == "" {
		return nil, none, nil
	}
	if strings.EqualFold(envvar.OTelDisabled.Get(), "true") {
		return nil, none, nil
	}
	proto := envvar.OTLPTracesProtocol.Get()
	if proto == "" {
		proto = envvar.OTLPProtocol.Get()
	}
	var exp sdktrace.SpanExporter
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, none, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", proto)
	}
	if err != nil {
		return nil, none, fmt.Errorf("OpenTelemetry OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(attribute.String("service.name", "artnet-serve")), resource.Environment())
	if err != nil {
		return nil, none, fmt.Errorf("OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return p, p.Shutdown, nil
}
