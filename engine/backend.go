// Package engine selects the GoMLX backend artnet trains and evaluates on, and closes the gaps of
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
//     Concatenate) + one DotGeneral (depthwise convolutions: artnet's kernel on "go", see below and
//     depthwise.go; a sum of Slice·weight on "go:reference"): simplego's own ConvGeneral is a
//     scalar loop, measured 4-16× slower (config "go:direct_conv" keeps it);
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
// Measured first (shared/notes/cpu-training-profile.md, then per-node timings): ~83% of a b0
// training step went to simplego's broadcast Mul and ReduceSum executors, which walk
// per-element index iterators; most of those nodes were GoMLX v0.26's DotGeneral gradient,
// which multiplies with broadcasting and then reduces (materializing [batch, lhs free, rhs
// free, contracted] tensors) instead of using matrix products. After fixing that, matrix
// products (simplego's pure-Go loop, ≈1.4 G multiply-adds/s), the depthwise convolutions
// (k² shifted slices, their Pad/Concatenate gradients) and single-threaded elementwise loops
// were the step. What "go" does now ("go:reference" keeps all of GoMLX's own behaviour and the
// previous graph forms, for parity tests and same-numbers checks):
//
//   - vjp.go: the DotGeneral gradient as two DotGenerals; depthwise.go: the depthwise
//     convolution gradient as two convolution nodes (GoMLX's splits a grouped convolution into C
//     convolutions). Installed through GoMLX's exported VJPRegistration, applied only to graphs
//     on this backend — XLA and the ONNX recorder keep GoMLX's VJPs and graphs unchanged.
//   - fastexec.go: artnet's kernels (engine/internal/kernels: plain functions on flat slices)
//     installed in simplego's op executor table — broadcasting and same-shape binary ops,
//     reductions, BroadcastInDim, Transpose, Logistic, Tanh (strided row loops over both cores,
//     bit-identical to simplego's but for float32 sums, added in 16 lanes, and float32 Logistic,
//     a polynomial e^x within 2 ulp), DotGeneral as batched GEMM in OpenBLAS (fastexec_dot.go;
//     cgo, Debian libopenblas-dev; single-threaded OpenBLAS calls split over both cores by
//     artnet, reproducible run to run), depthwise convolution forward / input gradient / kernel
//     gradient as direct loops over planes and taps (no im2col buffer; with strides 1 one long
//     multiply-add or dot product per tap over zero-padded planes).
//   - kernels/simd.h: the float32 inner loops of those kernels in C, vectorized by GCC
//     (AVX-512/AVX2/baseline clones picked at load time, no FMA contraction, fixed 16-lane sums:
//     the same bits on every x86-64 and as the Go loops of a cgo-off build, which mirror them).
//     Go does not vectorize: the C loops made the b0 training step 1.9× faster.
//   - opsparallel.go: independent ops run concurrently (the pool of simplego's parallel op
//     execution unlimited, so it cannot deadlock): 1.5 → 1.75 of the two cores busy.
//
// Why an executor-table hook rather than graph-level rewrites alone or an own executable:
// rewrites at the Builder can only pick among simplego's executors (an explicit BroadcastInDim
// still runs the same per-element iterator, and a matrix product stays at 1.4 G MAC/s), and a
// separate executable for fused ops would re-implement simplego's scheduling and buffer
// ownership. simplego v0.26.0 keeps the table (nodeExecutors), its buffer pool and the fields of
// Node/Buffer unexported: they are reached with //go:linkname and mirror structs, pinned to
// v0.26.0 and checked field by field with reflect (at start-up, and on first use for the
// DotGeneral/ConvGeneral node data); on a mismatch the kernels are not used and FastKernelsError,
// DotGeneralKernelError and ConvolutionKernelError (all tested) say why, so a GoMLX upgrade fails
// tests loudly instead of corrupting memory. Every kernel returns nil for what it doesn't cover
// (other dtypes, layouts, a buffer pool that is gone) and simplego's executor runs instead.
// Buffers come from and go back to simplego's pool, so intermediate buffers are reused between
// steps as before; an op reuses an input's buffer when it is that buffer's last use.
//
// The wrapped backend runs independent ops concurrently, with simplego's worker pool unlimited
// (opsparallel.go: the bounded pool deadlocks when every worker slot holds an op that itself
// waits for a worker).
//
// "xla" configurations are only available when built with the `xla` build tag (see xla.go).
package engine

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/artnet/artnet/internal/envvar"
)

// GoBackendName is the config name of the pure-Go backend (wrapped with artnet's fixes).
const GoBackendName = "go"

// BackendConfig is the backend configuration NewBackend uses for config: config itself, else
// $GOMLX_BACKEND (envvar.Backend), else "go".
func BackendConfig(config string) string {
	if config == "" {
		config = envvar.Backend.Get()
	}
	if config == "" {
		config = GoBackendName
	}
	return config
}

// NewBackend returns the backend for config: "" means $GOMLX_BACKEND, and if that is unset "go".
// "go" (or "go:<cfg>", <cfg> being comma-separated simplego options, e.g. "parallelism=2", plus
// artnet's "direct_conv": simplego's own convolution loop instead of im2col, "nofuse": no
// elementwise fusion, and "reference": none of artnet's kernels or gradient rewrites, GoMLX's
// own executors) is the pure-Go backend wrapped with artnet's gap fixes. It executes
// independent ops concurrently with an unlimited worker pool (opsparallel.go; simplego's bounded
// pool can deadlock, see TestNoDeadlock) unless <cfg> names "ops_sequential" (one op after
// another) or "parallelism=N" (simplego's bounded pool).
// "xla" / "xla:cuda" / "xla:cpu" is GoMLX's XLA/PJRT backend: only compiled in with build tag
// `xla`; without it NewBackend returns an error saying so.
func NewBackend(config string) (backends.Backend, error) {
	config = BackendConfig(config)
	name, cfg, _ := strings.Cut(config, ":")
	switch name {
	case GoBackendName, "simplego":
		var opts []string
		directConv, reference, noFuse := false, false, false
		sequential, parallel, poolSet := false, false, false
		for _, opt := range strings.Split(cfg, ",") {
			switch opt {
			case "direct_conv":
				directConv = true
			case "reference":
				reference = true
			case "nofuse":
				noFuse = true
			case "":
			default:
				sequential = sequential || opt == "ops_sequential"
				parallel = parallel || opt == "ops_parallel"
				poolSet = poolSet || strings.HasPrefix(opt, "parallelism=")
				opts = append(opts, opt)
			}
		}
		// Independent ops run concurrently with simplego's worker pool unlimited (opsparallel.go):
		// its bounded pool deadlocks when all its slots hold ops that wait for a slot
		// themselves. "ops_sequential" runs them one after another; "parallelism=N" keeps
		// simplego's bounded pool (with its deadlock), for experiments.
		parallelOps := !sequential && !poolSet && unlimitedWorkersErr == nil
		switch {
		case parallelOps && !parallel:
			opts = append(opts, "ops_parallel")
		case !parallelOps && !sequential && !parallel:
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
		if parallelOps {
			setUnlimitedWorkers(sg)
		}
		if !reference {
			enableFastKernels(sg)
		}
		return &Backend{Backend: sg, directConv: directConv, reference: reference, noFuse: noFuse}, nil
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
	noFuse     bool // "go:nofuse": no elementwise fusion (fusion.go), for comparisons
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
	return &Builder{Builder: b.Backend.Builder(name).(*simplego.Builder), directConv: b.directConv, fast: b.FastDepthwise(),
		fuse: b.FastDepthwise() && !b.noFuse}
}

// Builder embeds simplego's Builder and overrides the ops it lacks or gets wrong.
type Builder struct {
	*simplego.Builder
	directConv bool
	fast       bool // artnet's kernels run this builder's graphs (not "go:reference")
	fuse       bool // elementwise chains become fused nodes when compiled (fusion.go)
}

var _ backends.Builder = (*Builder)(nil)

// Finalize releases the backend (and its entry in the set of backends running artnet's kernels).
func (b *Backend) Finalize() {
	fastBackends.Delete(b.Backend)
	b.Backend.Finalize()
}
