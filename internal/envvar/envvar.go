// Package envvar is the one registry of the environment variables artnet reads: every
// os.Getenv outside tests goes through a Var declared here (a test checks the source tree), so
// that `artnet doctor` and the README can list them all with what they do.
package envvar

import "os"

// Var is one environment variable artnet reads.
type Var struct {
	Name    string
	Default string // what applies when it is unset ("" = nothing)
	Doc     string // one line: what it changes
	ReadBy  string // the package that reads it
	Tests   bool   // read by tests only (internal/testenv), not by the artnet binaries
}

// Get returns the variable's value ("" when unset).
func (v *Var) Get() string { return os.Getenv(v.Name) }

var all []*Var

func register(v Var) *Var {
	all = append(all, &v)
	return &v
}

// The variables, in the order doctor lists them.
var (
	Backend = register(Var{Name: "GOMLX_BACKEND", Default: "go", ReadBy: "graph",
		Doc: "GoMLX backend for training and GoMLX inference when --backend is not given: go, go:<options>, go:reference, xla:cuda (GoMLX's own variable)"})
	ORTLibrary = register(Var{Name: "ONNXRUNTIME_SHARED_LIBRARY_PATH", ReadBy: "runtime",
		Doc: "ONNX Runtime shared library when --ort-lib is not given (then third_party/onnxruntime, then system folders)"})
	Data = register(Var{Name: "ARTNET_DATA", Default: "data/wikiart", ReadBy: "wikiart",
		Doc: "WikiArt data root when --data is not given"})
	LDLibraryPath = register(Var{Name: "LD_LIBRARY_PATH", ReadBy: "runtime",
		Doc: "folders searched for the ONNX Runtime library after the project's third_party/onnxruntime"})
	JPEG = register(Var{Name: "ARTNET_JPEG", ReadBy: "preprocess",
		Doc: `"go": decode JPEGs with image/jpeg instead of libjpeg-turbo`})
	TurboJPEG = register(Var{Name: "ARTNET_TURBOJPEG_LIB", Default: "libturbojpeg.so.0", ReadBy: "preprocess",
		Doc: "path of the libjpeg-turbo library opened for JPEG decoding"})
	WikiArt = register(Var{Name: "ARTNET_WIKIART", Default: "../shared/wikiart", ReadBy: "internal/testenv", Tests: true,
		Doc: "full WikiArt image set for integration tests (skipped without it)"})
	WikiArtExtra = register(Var{Name: "ARTNET_WIKIART_EXTRA", Default: "../shared/wikiart-extra", ReadBy: "internal/testenv", Tests: true,
		Doc: "extra WikiArt root (style labels only) for integration tests (else wikiart-extra beside $ARTNET_WIKIART)"})
	RequireDeps = register(Var{Name: "ARTNET_REQUIRE_DEPS", ReadBy: "internal/testenv", Tests: true,
		Doc: `"1": a test whose optional tool or native library is missing fails instead of skipping (CI, scripts/fresh-machine-check.sh)`})
	OTLPEndpoint = register(Var{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", ReadBy: "cmd/internal/command",
		Doc: "OpenTelemetry: where `serve` exports its request spans over OTLP (unset: no tracing; the SDK reads the other OTEL_* variables)"})
	OTLPTracesEndpoint = register(Var{Name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ReadBy: "cmd/internal/command",
		Doc: "OpenTelemetry: the traces endpoint, instead of OTEL_EXPORTER_OTLP_ENDPOINT"})
	OTelDisabled = register(Var{Name: "OTEL_SDK_DISABLED", ReadBy: "cmd/internal/command",
		Doc: `OpenTelemetry: "true" turns tracing off`})
	OTLPProtocol = register(Var{Name: "OTEL_EXPORTER_OTLP_PROTOCOL", Default: "http/protobuf", ReadBy: "cmd/internal/command",
		Doc: "OpenTelemetry: http/protobuf or grpc"})
	OTLPTracesProtocol = register(Var{Name: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", ReadBy: "cmd/internal/command",
		Doc: "OpenTelemetry: the traces protocol, instead of OTEL_EXPORTER_OTLP_PROTOCOL"})
	BenchImage = register(Var{Name: "ARTNET_BENCH_IMAGE", ReadBy: "internal/testenv", Tests: true,
		Doc: "image file the decoding benchmarks read instead of the repository's painting"})
)

// Lookup returns the value of the registered variable called name; "" for a name not
// registered (reading an unregistered variable is a bug the registry's test catches).
func Lookup(name string) string {
	for _, v := range all {
		if v.Name == name {
			return v.Get()
		}
	}
	return ""
}

// All returns every registered variable, in declaration order.
func All() []Var {
	out := make([]Var, len(all))
	for i, v := range all {
		out[i] = *v
	}
	return out
}
