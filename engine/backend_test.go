package engine_test

import (
	"strings"
	"testing"

	"github.com/artnet/artnet/engine"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestNewBackendGo(t *testing.T) {
	t.Setenv(backends.ConfigEnvVar, "")
	for _, config := range []string{"", "go", "go:ops_sequential"} {
		b, err := engine.NewBackend(config)
		if err != nil {
			t.Fatalf("NewBackend(%q): %v", config, err)
		}
		if _, ok := b.(*engine.Backend); !ok {
			t.Fatalf("NewBackend(%q) = %T, want the wrapped pure-Go backend", config, b)
		}
		if !b.Capabilities().Operations[backends.OpTypeReverse] {
			t.Errorf("NewBackend(%q): capabilities lack Reverse", config)
		}
		b.Finalize()
	}
}

func TestNewBackendFromEnv(t *testing.T) {
	t.Setenv(backends.ConfigEnvVar, "go:bogus_option")
	if _, err := engine.NewBackend(""); err == nil || !strings.Contains(err.Error(), "bogus_option") {
		t.Fatalf("NewBackend(\"\") with $GOMLX_BACKEND=go:bogus_option: err = %v, want the option rejected", err)
	}
}

func TestNewBackendUnknown(t *testing.T) {
	_, err := engine.NewBackend("tpu9000")
	if err == nil || !strings.Contains(err.Error(), "tpu9000") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("NewBackend(\"tpu9000\"): err = %v, want a one-line error naming it", err)
	}
}

func TestAvailable(t *testing.T) {
	av := engine.Available()
	if err, ok := av["go"]; !ok || err != nil {
		t.Fatalf("Available()[\"go\"] = %v (present %v), want nil", err, ok)
	}
	for _, config := range []string{"xla:cpu", "xla:cuda"} {
		if _, ok := av[config]; !ok {
			t.Errorf("Available() lacks %q", config)
		}
		t.Logf("%s: %v", config, av[config])
	}
}

// TestSimplegoAloneFails shows the wrapper is needed: GoMLX's pure-Go backend on its own fails
// Reverse, Pad (the Slice gradient), convolution with nil strides and backend batch norm.
func TestSimplegoAloneFails(t *testing.T) {
	raw, err := simplego.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Finalize()
	x := randArr(40, 1, 2, 4, 4).tensor()
	k := randArr(41, 3, 2, 3, 3).tensor()
	cases := map[string]func() error{
		"Reverse": func() error {
			_, err := execOnce(raw, x, func(x *Node) *Node { return Reverse(x, 2) })
			return err
		},
		"SliceGradient": func() error {
			_, err := execOnce(raw, x, func(x *Node) *Node {
				return Gradient(ReduceAllSum(Slice(x, AxisRange(), AxisRange(), AxisRange(1, 3))), x)[0]
			})
			return err
		},
		"ConvGeneralNilStrides": func() error {
			_, err := execOnce(raw, []any{x, k}, func(x, k *Node) *Node {
				axes := ConvolveAxesConfig{InputChannels: 1, InputSpatial: []int{2, 3}, KernelInputChannels: 1,
					KernelSpatial: []int{2, 3}, OutputChannels: 1, OutputSpatial: []int{2, 3}}
				return ConvGeneral(x, k, axes, nil, nil, nil, nil, 1, 1)
			})
			return err
		},
		"BatchNormForTraining": func() error {
			_, err := execOnce(raw, x, func(x *Node) *Node {
				s := OnesLike(Slice(x, AxisElem(0), AxisRange(), AxisElem(0), AxisElem(0)))
				n, _, _ := InternalBatchNormForTraining(x, Reshape(s, 2), Reshape(s, 2), 1e-3, 1)
				return n
			})
			return err
		},
	}
	for name, run := range cases {
		if err := run(); err == nil {
			t.Errorf("%s: plain simplego succeeded; the wrapper's fix may no longer be needed", name)
		} else {
			t.Logf("%s on plain simplego: %.120s", name, err)
		}
	}
}

// execOnce runs fn once on b and returns its first output or the error (panics caught).
func execOnce(b backends.Backend, in any, fn any) (out *tensors.Tensor, err error) {
	e, err := NewExecAny(b, fn)
	if err != nil {
		return nil, err
	}
	defer e.Finalize()
	ins, ok := in.([]any)
	if !ok {
		ins = []any{in}
	}
	res, err := e.Exec(ins...)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}
