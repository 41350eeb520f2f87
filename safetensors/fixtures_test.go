package safetensors

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

// The PyTorch reference fixtures written by tools/torchref/gen_fixtures.py.
var torchref = filepath.Join("..", "testdata", "torchref")

func readFixture(t *testing.T, name string) *File {
	t.Helper()
	f, err := ReadFile(filepath.Join(torchref, name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 tools/torchref/gen_fixtures.py)", err)
	}
	return f
}

func get(t *testing.T, f *File, name string, shape ...int) *Tensor {
	t.Helper()
	x := f.Tensors[name]
	if x == nil {
		t.Fatalf("tensor %q missing", name)
	}
	if shape != nil && !reflect.DeepEqual(x.Shape, shape) {
		t.Fatalf("tensor %q: shape %v, want %v", name, x.Shape, shape)
	}
	return x
}

func TestFixtureConfigIsTiny(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(torchref, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := spec.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := spec.Tiny(); !reflect.DeepEqual(c, want) {
		t.Errorf("config.json differs from spec.Tiny():\n got %s\nwant %s", c.JSON(), want.JSON())
	}
}

func TestFixtureStateDict(t *testing.T) {
	cfg := spec.Tiny()
	f := readFixture(t, "tiny.safetensors")
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	c := cfg.HeadChannels
	get(t, f, "backbone.features.0.0.weight", 8, 3, 3, 3)  // stem, width 0.25
	get(t, f, "backbone.features.5.0.weight", c, 24, 1, 1) // head conv at features.{stages+1}
	get(t, f, "backbone.proj.weight", cfg.ProjDim, c, 1, 1)
	get(t, f, "backbone.proj.bias", cfg.ProjDim)
	h := cfg.LSTMHidden
	for k := 0; k < cfg.LSTMLayers; k++ {
		in := cfg.ProjDim
		if k > 0 {
			in = 2 * h
		}
		for _, sfx := range []string{"", "_reverse"} {
			get(t, f, fmt.Sprintf("encoder.lstm.weight_ih_l%d%s", k, sfx), 4*h, in)
			get(t, f, fmt.Sprintf("encoder.lstm.weight_hh_l%d%s", k, sfx), 4*h, h)
			get(t, f, fmt.Sprintf("encoder.lstm.bias_ih_l%d%s", k, sfx), 4*h)
			get(t, f, fmt.Sprintf("encoder.lstm.bias_hh_l%d%s", k, sfx), 4*h)
		}
	}
	get(t, f, "attention.W.weight", cfg.AttnDim, 2*h)
	get(t, f, "attention.W.bias", cfg.AttnDim)
	get(t, f, "attention.v.weight", 1, cfg.AttnDim)
	if _, ok := f.Tensors["attention.v.bias"]; ok {
		t.Error("attention.v has a bias; the spec says none")
	}
	for _, task := range spec.Tasks {
		get(t, f, "heads."+task+".0.weight", cfg.HeadHidden, 2*h)
		get(t, f, "heads."+task+".0.bias", cfg.HeadHidden)
		get(t, f, "heads."+task+".3.weight", cfg.NumClasses(task), cfg.HeadHidden)
		get(t, f, "heads."+task+".3.bias", cfg.NumClasses(task))
	}

	params, nbt := 0, 0
	for _, name := range f.Order {
		x := f.Tensors[name]
		switch {
		case strings.HasSuffix(name, ".num_batches_tracked"):
			nbt++
			if x.DType != "I64" || x.Data != nil || len(x.Shape) != 0 {
				t.Errorf("%s: dtype %s shape %v, want an I64 scalar without data", name, x.DType, x.Shape)
			}
			continue
		case x.DType != "F32":
			t.Errorf("%s: dtype %s, want F32", name, x.DType)
		case strings.HasSuffix(name, ".running_var"):
			for i, v := range x.Data {
				if !(v > 0) {
					t.Fatalf("%s[%d] = %g, want > 0", name, i, v)
				}
			}
			continue
		case strings.HasSuffix(name, ".running_mean"):
			continue
		}
		params += len(x.Data)
	}
	// README.md: tiny DeepArtNet has 33,150 parameters; BatchNorms: stem 1, block 1 (no expansion) 2, blocks 2–4 3 each, head 1 = 13.
	if params != 33150 || nbt != 13 {
		t.Errorf("%d parameters and %d num_batches_tracked, want 33150 and 13", params, nbt)
	}

	b := readFixture(t, "backbone_only.safetensors")
	var want []string
	for _, name := range f.Order {
		if strings.HasPrefix(name, "backbone.features.") {
			want = append(want, name)
		}
	}
	if !reflect.DeepEqual(b.Order, want) {
		t.Fatalf("backbone_only.safetensors holds %d tensors, want the %d backbone.features.* of tiny.safetensors", len(b.Order), len(want))
	}
	for _, name := range want {
		if !reflect.DeepEqual(b.Tensors[name], f.Tensors[name]) {
			t.Errorf("%s differs between backbone_only.safetensors and tiny.safetensors", name)
		}
	}
}

// linear computes x·Wᵀ + b for one row (PyTorch's nn.Linear layout: W is out×in).
func linear(w *Tensor, b *Tensor, x []float64) []float64 {
	out, in := w.Shape[0], w.Shape[1]
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := 0.0
		if b != nil {
			s = float64(b.Data[o])
		}
		for i := 0; i < in; i++ {
			s += float64(w.Data[o*in+i]) * x[i]
		}
		y[o] = s
	}
	return y
}

func softmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	s, y := 0.0, make([]float64, len(x))
	for i, v := range x {
		y[i] = math.Exp(v - m)
		s += y[i]
	}
	for i := range y {
		y[i] /= s
	}
	return y
}

func closeTo(t *testing.T, what string, got []float64, want []float32, tol float64) {
	t.Helper()
	for i := range got {
		if d := math.Abs(got[i] - float64(want[i])); d > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %g, fixture says %g", what, i, got[i], want[i])
		}
	}
}

// TestFixtureOutputs checks the outputs' shapes and recomputes, in Go, the parts of the model
// after the LSTM (attention and heads) from the fixture's weights and encoder output: the
// fixtures are consistent and the spec's semantics (row-major tokens, Linear layout, softmax
// over tokens) are what the Go side must implement.
func TestFixtureOutputs(t *testing.T) {
	cfg := spec.Tiny()
	w := readFixture(t, "tiny.safetensors")
	o := readFixture(t, "tiny_outputs.safetensors")
	const batch = 3
	gh, gw := cfg.Grid()
	T, D := gh*gw, 2*cfg.LSTMHidden
	get(t, o, "input", batch, 3, cfg.ImageSize, cfg.ImageSize)
	get(t, o, "backbone.features", batch, cfg.HeadChannels, gh, gw)
	proj := get(t, o, "backbone.proj", batch, cfg.ProjDim, gh, gw)
	tokens := get(t, o, "tokens", batch, T, cfg.ProjDim)
	enc := get(t, o, "encoder", batch, T, D)
	att := get(t, o, "attention", batch, T)
	ctx := get(t, o, "context", batch, D)

	// token t = row·W + col.
	for b := 0; b < batch; b++ {
		for c := 0; c < cfg.ProjDim; c++ {
			for r := 0; r < gh; r++ {
				for col := 0; col < gw; col++ {
					tk := r*gw + col
					if tokens.Data[(b*T+tk)*cfg.ProjDim+c] != proj.Data[((b*cfg.ProjDim+c)*gh+r)*gw+col] {
						t.Fatalf("tokens[%d][%d][%d] is not proj[%d][%d][%d][%d]", b, tk, c, b, c, r, col)
					}
				}
			}
		}
	}

	for b := 0; b < batch; b++ {
		scores := make([]float64, T)
		for tk := 0; tk < T; tk++ {
			h := make([]float64, D)
			for i := range h {
				h[i] = float64(enc.Data[(b*T+tk)*D+i])
			}
			a := linear(w.Tensors["attention.W.weight"], w.Tensors["attention.W.bias"], h)
			for i := range a {
				a[i] = math.Tanh(a[i])
			}
			scores[tk] = linear(w.Tensors["attention.v.weight"], nil, a)[0]
		}
		alpha := softmax(scores)
		closeTo(t, fmt.Sprintf("attention[%d]", b), alpha, att.Data[b*T:(b+1)*T], 1e-5)
		context := make([]float64, D)
		for tk := 0; tk < T; tk++ {
			for i := 0; i < D; i++ {
				context[i] += alpha[tk] * float64(enc.Data[(b*T+tk)*D+i])
			}
		}
		closeTo(t, fmt.Sprintf("context[%d]", b), context, ctx.Data[b*D:(b+1)*D], 1e-5)

		for _, task := range spec.Tasks {
			n := cfg.NumClasses(task)
			p := get(t, o, task, batch, n)
			hid := linear(w.Tensors["heads."+task+".0.weight"], w.Tensors["heads."+task+".0.bias"], context)
			for i := range hid {
				hid[i] = math.Max(0, hid[i])
			}
			logits := linear(w.Tensors["heads."+task+".3.weight"], w.Tensors["heads."+task+".3.bias"], hid)
			closeTo(t, fmt.Sprintf("%s_logits[%d]", task, b), logits, get(t, o, task+"_logits", batch, n).Data[b*n:(b+1)*n], 1e-4)
			closeTo(t, fmt.Sprintf("%s[%d]", task, b), softmax(logits), p.Data[b*n:(b+1)*n], 1e-4)
		}
	}
}

// TestFixtureHalfPrecision compares the F16/BF16 decoding with PyTorch's own conversions.
func TestFixtureHalfPrecision(t *testing.T) {
	f := readFixture(t, "dtypes.safetensors")
	for _, p := range [][2]string{{"x_f16", "x_f16_as_f32"}, {"x_bf16", "x_bf16_as_f32"}} {
		half, ref := get(t, f, p[0]), get(t, f, p[1])
		if want := map[string]string{"x_f16": "F16", "x_bf16": "BF16"}[p[0]]; half.DType != want || ref.DType != "F32" {
			t.Fatalf("%s is %s, %s is %s", p[0], half.DType, p[1], ref.DType)
		}
		if len(half.Data) != 64 || len(ref.Data) != 64 {
			t.Fatalf("%s: %d values, %s: %d, want 64", p[0], len(half.Data), p[1], len(ref.Data))
		}
		for i, v := range half.Data {
			w := ref.Data[i]
			if math.Float32bits(v) != math.Float32bits(w) && !(v != v && w != w) {
				t.Errorf("%s[%d] = %g (%#08x), PyTorch says %g (%#08x)", p[0], i, v, math.Float32bits(v), w, math.Float32bits(w))
			}
		}
	}
	if s := get(t, f, "steps", 1); s.DType != "I64" || s.Data != nil {
		t.Errorf("steps: %+v", s)
	}
}
