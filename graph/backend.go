// Package graph selects the GoMLX backend artnet trains and evaluates on, and closes the gaps of
// GoMLX v0.26.0's pure-Go backend ("go", package backends/simplego).
//
// NewBackend("go") returns simplego's backend wrapped by a type whose Builder embeds simplego's
// Builder and overrides only the ops that are missing or buggy there:
//
//   - Reverse (used by every convolution gradient) composed from Slice and Concatenate;
//   - Pad (used by every Slice gradient, hence by LSTMs, depthwise convs and pooling gradients)
//     composed from Reshape, BroadcastInDim, Concatenate and Slice, including interior padding and
//     negative (cropping) edges;
//   - ConvGeneral with nil/empty strides, paddings and dilations filled in with their defaults
//     (simplego errors on nil strides and, per the shared notes, crashes a worker goroutine on a grouped stride-2
//     convolution without explicit kernel dilations), computed as im2col (strided Slices,
//     Concatenate) + one DotGeneral, or as a sum of Slice·weight for depthwise convolutions:
//     simplego's own ConvGeneral is a scalar loop, measured 4-16× slower (config "go:direct_conv" keeps
//     it);
//   - BatchNormForInference, BatchNormForTraining and BatchNormGradient composed from
//     elementwise ops and reductions, so pkg/ml/layers/batchnorm works with its default settings
//     in training (gradients included) and inference.
//
// The composed ops return nodes built by the embedded simplego Builder, so the rest of simplego
// (compilation, execution, buffers) is used unchanged. Graph-level structure is unchanged too:
// a recording backend (the ONNX exporter) still sees one ConvGeneral, BatchNorm..., per op.
//
// # Speed: artnet's kernels in the pure-Go backend
//
// A profile of a b0 training step on "go" (shared/notes/cpu-training-profile.md) put ~83% of
// the time in simplego's broadcast Mul and ReduceSum executors, which walk per-element index
// iterators. Most of it came from GoMLX v0.26's DotGeneral gradient, which multiplies with
// broadcasting and then reduces ([batch, lhs free, rhs free, contracted] tensors) instead of
// using matrix products. Two changes, both for "go" only ("go:reference" keeps GoMLX's own
// behaviour, for parity tests and same-numbers checks):
//
//   - vjp.go replaces the DotGeneral VJP (GoMLX's exported VJPRegistration) by two DotGenerals
//     for graphs on this backend; other backends (XLA, the ONNX recorder) keep GoMLX's VJP.
//   - fastexec.go installs kernels from graph/internal/kernels (broadcasting binary ops,
//     reductions, BroadcastInDim: strided row loops, parallel over both cores) into simplego's
//     executor table. The table, the buffer pool and the Node/Buffer fields are unexported in
//     simplego: they are reached with //go:linkname and mirror structs, pinned to GoMLX v0.26.0
//     and checked field by field with reflect at start-up; on a mismatch no kernel is installed
//     and FastKernelsError (tested) says why. Graph-level rewrites alone could not reach these
//     loops (an explicit BroadcastInDim still runs the same iterator), and a separate executable
//     would have meant re-implementing simplego's scheduler and buffer ownership.
//
// The kernels keep simplego's floating-point operation order (elementwise ops are exact, each
// sum accumulates in row-major order), so they are bit-identical to "go:reference".
//
// The wrapped backend also runs ops sequentially by default (simplego's parallel op execution
// deadlocks when every worker slot holds an op that itself waits for a worker).
//
// "xla" configurations are only available when built with the `xla` build tag (see xla.go).
package graph

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// GoBackendName is the config name of the pure-Go backend (wrapped with artnet's fixes).
const GoBackendName = "go"

// NewBackend returns the backend for config: "" means $GOMLX_BACKEND, and if that is unset "go".
// "go" (or "go:<cfg>", <cfg> being comma-separated simplego options, e.g. "parallelism=2", plus
// artnet's "direct_conv": simplego's own convolution loop instead of im2col, and "reference":
// none of artnet's kernels or gradient rewrites, GoMLX's own executors) is the pure-Go
// backend wrapped with artnet's gap fixes. It executes ops sequentially (each op still
// parallel inside) unless <cfg> says "ops_parallel": simplego's parallel op execution can
// deadlock (see TestNoDeadlock).
// "xla" / "xla:cuda" / "xla:cpu" is GoMLX's XLA/PJRT backend: only compiled in with build tag
// `xla`; without it NewBackend returns an error saying so.
func NewBackend(config string) (backends.Backend, error) {
	if config == "" {
		config = os.Getenv(backends.ConfigEnvVar)
	}
	if config == "" {
		config = GoBackendName
	}
	name, cfg, _ := strings.Cut(config, ":")
	switch name {
	case GoBackendName, "simplego":
		var opts []string
		directConv, opsMode, reference := false, false, false
		for _, opt := range strings.Split(cfg, ",") {
			switch opt {
			case "direct_conv":
				directConv = true
			case "reference":
				reference = true
			case "":
			default:
				opsMode = opsMode || opt == "ops_sequential" || opt == "ops_parallel"
				opts = append(opts, opt)
			}
		}
		if !opsMode {
			// simplego's parallel op execution deadlocks when all worker slots hold ops that
			// wait for a worker themselves (e.g. several batched DotGenerals at once).
			opts = append(opts, "ops_sequential")
		}
		inner, err := simplego.New(strings.Join(opts, ","))
		if err != nil {
			return nil, fmt.Errorf("graph.NewBackend(%q): %w", config, err)
		}
		sg, ok := inner.(*simplego.Backend)
		if !ok {
			return nil, fmt.Errorf("graph.NewBackend(%q): simplego.New returned %T, not *simplego.Backend", config, inner)
		}
		if !reference {
			enableFastKernels(sg)
		}
		return &Backend{Backend: sg, directConv: directConv, reference: reference}, nil
	case "xla", "stablehlo", "shlo", "hlo":
		return newXLABackend(config, cfg)
	default:
		return nil, fmt.Errorf("graph.NewBackend(%q): unknown backend %q (valid: \"go\", \"go:<simplego options>\", \"xla\", \"xla:cpu\", \"xla:cuda\")", config, name)
	}
}

// Available reports which backend configs work on this machine, each with an error when not
// (nil when it works). It tries to create each backend, so it is meant for diagnostics
// (`artnet doctor`), not for hot paths.
func Available() map[string]error {
	result := make(map[string]error)
	for _, config := range []string{"go", "xla:cpu", "xla:cuda"} {
		b, err := NewBackend(config)
		if err == nil {
			b.Finalize()
		}
		result[config] = err
	}
	return result
}

// Backend is simplego's backend whose builders close the gaps listed in the package documentation.
// Everything but Builder, Name, Description and Capabilities is simplego's.
type Backend struct {
	*simplego.Backend
	directConv bool // use simplego's ConvGeneral loop instead of im2col + DotGeneral
	reference  bool // "go:reference": GoMLX's own executors, without artnet's kernels
}

var _ backends.Backend = (*Backend)(nil)

// Name returns the short name of the backend.
func (b *Backend) Name() string { return "SimpleGo (go) + artnet fixes" }

// Description is a longer description of the backend.
func (b *Backend) Description() string {
	return "GoMLX pure-Go backend with artnet's Reverse, Pad, ConvGeneral and BatchNorm fixes"
}

// Capabilities returns simplego's capabilities plus the ops the wrapper adds.
func (b *Backend) Capabilities() backends.Capabilities {
	c := b.Backend.Capabilities().Clone()
	for _, op := range []backends.OpType{
		backends.OpTypeReverse, backends.OpTypePad,
		backends.OpTypeBatchNormForInference, backends.OpTypeBatchNormForTraining, backends.OpTypeBatchNormGradient,
	} {
		c.Operations[op] = true
	}
	return c
}

// Builder creates a new builder for a computation named name.
func (b *Backend) Builder(name string) backends.Builder {
	return &Builder{Builder: b.Backend.Builder(name).(*simplego.Builder), directConv: b.directConv, fast: b.FastDepthwise()}
}

// Builder embeds simplego's Builder and overrides the ops it lacks or gets wrong.
type Builder struct {
	*simplego.Builder
	directConv bool
	fast       bool // artnet's kernels run this builder's graphs (not "go:reference")
}

var _ backends.Builder = (*Builder)(nil)

// Finalize releases the backend (and its entry in the set of backends running artnet's kernels).
func (b *Backend) Finalize() {
	fastBackends.Delete(b.Backend)
	b.Backend.Finalize()
}
