package models

import (
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models/spec"
)

var (
	backendOnce sync.Once
	testBackend backends.Backend
)

// backend returns artnet's pure-Go backend (simplego with the gradient gap fixes).
func backend(t testing.TB) backends.Backend {
	backendOnce.Do(func() {
		b, err := engine.NewBackend(engine.GoBackendName)
		if err != nil {
			t.Fatalf("graph.NewBackend: %v", err)
		}
		testBackend = b
	})
	return testBackend
}

// randomImages returns deterministic pseudo-random images [b, 3, size, size].
func randomImages(seed int64, b, size int) *tensors.Tensor {
	r := rand.New(rand.NewSource(seed))
	data := make([]float32, b*3*size*size)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(data, b, 3, size, size)
}

// run builds and runs the model on images, returning style/genre/artist probabilities, the
// attention and style logits as float32 slices.
func run(t testing.TB, ctx *context.Context, cfg spec.Config, images *tensors.Tensor, training bool) [][]float32 {
	t.Helper()
	exec, err := context.NewExec(backend(t), ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
		ctx.SetTraining(x.Graph(), training)
		o := Build(ctx, cfg, x)
		return []*graph.Node{o.Probs["style"], o.Probs["genre"], o.Probs["artist"], o.Attention, o.Logits["style"]}
	})
	if err != nil {
		t.Fatalf("NewExec: %v", err)
	}
	outs, err := exec.Exec(images)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

func seededContext(seed int64) *context.Context {
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, seed)
	return ctx
}

func midConfig() spec.Config {
	c := spec.Tiny()
	c.WidthMult, c.DepthMult = 0.5, 0.5
	c.Stages = 6
	c.HeadChannels = 0 // 4 × last stage's channels
	c.ImageSize, c.ResizeSize = 48, 56
	c.ProjDim, c.LSTMHidden, c.AttnDim, c.HeadHidden = 24, 8, 12, 16
	return c
}

func TestBuildShapesAndSums(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  spec.Config
	}{{"tiny", spec.Tiny()}, {"mid", midConfig()}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			const b = 2
			ctx := seededContext(1)
			var shapesSeen []shapes.Shape
			exec, err := context.NewExec(backend(t), ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
				o := Build(ctx, cfg, x)
				outs := []*graph.Node{o.Probs["style"], o.Probs["genre"], o.Probs["artist"], o.Attention,
					o.Logits["style"], o.Logits["genre"], o.Logits["artist"]}
				for _, n := range outs {
					shapesSeen = append(shapesSeen, n.Shape())
				}
				return outs
			})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := exec.Exec(randomImages(2, b, cfg.ImageSize))
			if err != nil {
				t.Fatal(err)
			}
			want := [][]int{{b, 27}, {b, 10}, {b, 23}, {b, cfg.Tokens()}, {b, 27}, {b, 10}, {b, 23}}
			for i, s := range shapesSeen {
				if !s.Equal(shapes.Make(dtypes.Float32, want[i]...)) {
					t.Errorf("output %d: shape %s, want %v", i, s, want[i])
				}
			}
			for i := 0; i < 4; i++ {
				flat := tensors.MustCopyFlatData[float32](outs[i])
				n := want[i][1]
				for r := 0; r < b; r++ {
					sum := 0.0
					for _, v := range flat[r*n : (r+1)*n] {
						if !(v >= 0 && v <= 1) {
							t.Fatalf("output %d row %d: value %g outside [0,1]", i, r, v)
						}
						sum += float64(v)
					}
					if math.Abs(sum-1) > 1e-5 {
						t.Errorf("output %d row %d sums to %g, want 1", i, r, sum)
					}
				}
			}
		})
	}
}

// TestSingleOutput runs the model with only one of its outputs requested (the other heads'
// variables are then unused parameters of the graph).
func TestSingleOutput(t *testing.T) {
	cfg := spec.Tiny()
	for _, task := range spec.Tasks {
		exec, err := context.NewExec(backend(t), seededContext(6), func(ctx *context.Context, x *graph.Node) *graph.Node {
			return Build(ctx, cfg, x).Probs[task]
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec(randomImages(7, 1, cfg.ImageSize))
		if err != nil {
			t.Fatalf("only Probs[%q]: %v", task, err)
		}
		if d := out[0].Shape().Dimensions; d[1] != cfg.NumClasses(task) {
			t.Fatalf("Probs[%q] shape %v", task, d)
		}
	}
}

// TestDepthwiseModesAgree checks that the shifted-slices depthwise convolution (pure-Go default)
// and the grouped ConvGeneral (XLA / ONNX export) give the same model outputs, in inference and
// in training mode (same seed, so the same dropout masks).
func TestDepthwiseModesAgree(t *testing.T) {
	cfg := midConfig() // has 3×3 and 5×5 depthwise convs with strides 1 and 2
	images := randomImages(8, 2, cfg.ImageSize)
	for _, training := range []bool{false, true} {
		var outs [2][][]float32
		for i, mode := range []string{DepthwiseConv, DepthwiseShifted} {
			ctx := seededContext(9)
			ctx.SetParam(ParamDepthwise, mode)
			outs[i] = run(t, ctx, cfg, images, training)
		}
		for j := range outs[0] {
			if d := maxDiff(outs[0][j], outs[1][j]); d > 1e-5 {
				t.Errorf("training=%v output %d: conv and shifted depthwise differ by %g", training, j, d)
			}
		}
	}
	ctx := context.New()
	ctx.SetParam(ParamDepthwise, "fast")
	g := graph.NewGraph(backend(t), "badparam")
	if err := catch(func() {
		Build(ctx, cfg, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 3, 48, 48)))
	}); err == nil || !strings.Contains(err.Error(), ParamDepthwise) {
		t.Fatalf("unknown %s value: %v", ParamDepthwise, err)
	}
}

func TestTokenGrid(t *testing.T) {
	// The attention length must equal spec's token count for odd sizes too (symmetric padding).
	cfg := spec.Tiny()
	cfg.ImageSize, cfg.ResizeSize = 50, 60
	g := graph.NewGraph(backend(t), "grid")
	o := Build(context.New(), cfg, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 3, 50, 50)))
	if got := o.Attention.Shape().Dimensions[1]; got != cfg.Tokens() {
		t.Fatalf("attention over %d tokens, spec.Tokens() = %d", got, cfg.Tokens())
	}
}

func TestBuildBadInputPanicsWithMessage(t *testing.T) {
	g := graph.NewGraph(backend(t), "bad")
	err := catch(func() {
		Build(context.New(), spec.Tiny(), graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 4, 64, 64)))
	})
	if err == nil {
		t.Fatal("Build accepted 4-channel images")
	}
	cfg := spec.Tiny()
	cfg.LSTMHidden = 0
	err = catch(func() {
		Build(context.New(), cfg, graph.Parameter(g, "y", shapes.Make(dtypes.Float32, 1, 3, 64, 64)))
	})
	if err == nil {
		t.Fatal("Build accepted lstm_hidden 0")
	}
}

// TestBackboneParamCounts checks the backbone against torchvision's parameter counts.
func TestBackboneParamCounts(t *testing.T) {
	for _, tc := range []struct {
		variant string
		want    int
	}{{"b0", 4007548}, {"b4", 17548616}} {
		cfg := spec.Default()
		cfg.Variant = tc.variant
		cfg.ImageSize, cfg.ResizeSize = 32, 32
		ctx := context.New()
		g := graph.NewGraph(backend(t), "count")
		Build(ctx, cfg, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 3, 32, 32)))
		counts := ParamCounts(ctx)
		if counts[PartBackbone] != tc.want {
			t.Errorf("%s backbone: %d parameters, torchvision has %d", tc.variant, counts[PartBackbone], tc.want)
		}
		if tc.variant == "b4" {
			// proj 1792·512+512; LSTM l0 2·(4·256·512 + 4·256·256 + 2·1024), l1 same with input 512;
			// attention 512·256+256+256; heads Σ (512·256+256 + 256·N+N).
			lstm := 2 * (4*256*512 + 4*256*256 + 2*1024)
			want := map[string]int{PartProj: 1792*512 + 512, PartEncoder: 2 * lstm,
				PartAttention: 512*256 + 256 + 256,
				PartHeads:     3*(512*256+256) + (256*27 + 27) + (256*10 + 10) + (256*23 + 23)}
			total := counts[PartBackbone]
			for k, w := range want {
				if counts[k] != w {
					t.Errorf("b4 %s: %d parameters, want %d", k, counts[k], w)
				}
				total += w
			}
			if counts[PartTotal] != total {
				t.Errorf("b4 total %d, want %d", counts[PartTotal], total)
			}
		}
	}
}

func TestTorchNames(t *testing.T) {
	cfg := spec.Tiny()
	ctx := context.New()
	g := graph.NewGraph(backend(t), "names")
	Build(ctx, cfg, graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 1, 3, 64, 64)))
	names := map[string]shapes.Shape{}
	for v := range ctx.IterVariables() {
		n := TorchName(v.Scope(), v.Name())
		names[n] = v.Shape()
		if s, nm := ScopeAndName(n); s != v.Scope() || nm != v.Name() {
			t.Errorf("ScopeAndName(%q) = %q %q, want %q %q", n, s, nm, v.Scope(), v.Name())
		}
	}
	a, _ := Architecture(cfg)
	for name, dims := range map[string][]int{
		"backbone.features.0.0.weight":             {a.StemChannels, 3, 3, 3},
		"backbone.features.0.1.running_var":        {a.StemChannels},
		"backbone.features.1.0.block.0.0.weight":   {a.StemChannels, 1, 3, 3}, // depthwise, no expansion
		"backbone.features.1.0.block.1.fc1.weight": {2, a.StemChannels, 1, 1},
		"backbone.features.1.0.block.2.0.weight":   {a.Blocks[0].Out, a.StemChannels, 1, 1},
		"backbone.features.2.0.block.0.0.weight":   {a.Blocks[1].Expanded, a.Blocks[1].In, 1, 1},
		"backbone.features.2.0.block.2.fc2.bias":   {a.Blocks[1].Expanded},
		"backbone.features.2.0.block.3.1.weight":   {a.Blocks[1].Out},
		"backbone.features.5.0.weight":             {64, a.Blocks[len(a.Blocks)-1].Out, 1, 1},
		"backbone.proj.weight":                     {32, 64, 1, 1},
		"backbone.proj.bias":                       {32},
		"encoder.lstm.weight_ih_l0":                {64, 32},
		"encoder.lstm.weight_hh_l0_reverse":        {64, 16},
		"encoder.lstm.weight_ih_l1":                {64, 32},
		"encoder.lstm.bias_hh_l1_reverse":          {64},
		"attention.W.weight":                       {16, 32},
		"attention.W.bias":                         {16},
		"attention.v.weight":                       {1, 16},
		"heads.style.0.weight":                     {32, 32},
		"heads.artist.3.weight":                    {23, 32},
		"heads.genre.3.bias":                       {10},
	} {
		s, ok := names[name]
		if !ok {
			t.Errorf("no variable for %s", name)
			continue
		}
		if !s.Equal(shapes.Make(dtypes.Float32, dims...)) {
			t.Errorf("%s: shape %s, want %v", name, s, dims)
		}
	}
	if _, ok := names["attention.v.bias"]; ok {
		t.Error("attention.v has a bias")
	}
}

func TestTrainingVsInference(t *testing.T) {
	cfg := spec.Tiny()
	cfg.Dropout = 0.5
	ctx := seededContext(3)
	images := randomImages(4, 2, cfg.ImageSize)
	inf1 := run(t, ctx, cfg, images, false)
	inf2 := run(t, ctx.Reuse(), cfg, images, false)
	if maxDiff(inf1[4], inf2[4]) != 0 {
		t.Fatalf("inference is not deterministic: max diff %g", maxDiff(inf1[4], inf2[4]))
	}
	rm := ctx.GetVariableByScopeAndName("/backbone/features/0/1", "running_mean")
	before := tensors.MustCopyFlatData[float32](rm.MustValue())
	tr := run(t, ctx.Reuse(), cfg, images, true)
	if maxDiff(inf1[4], tr[4]) < 1e-4 {
		t.Fatalf("training and inference logits agree (max diff %g) although dropout is 0.5", maxDiff(inf1[4], tr[4]))
	}
	after := tensors.MustCopyFlatData[float32](rm.MustValue())
	if maxDiff(before, after) == 0 {
		t.Fatal("training did not update the batch-norm running mean")
	}
	// Inference after training uses the updated running statistics, and again deterministically.
	inf3 := run(t, ctx.Reuse(), cfg, images, false)
	inf4 := run(t, ctx.Reuse(), cfg, images, false)
	if maxDiff(inf3[4], inf4[4]) != 0 {
		t.Fatal("inference after training is not deterministic")
	}
}

// TestBatchNormMatchesPyTorch checks batch norm training/inference math and running statistics.
func TestBatchNormMatchesPyTorch(t *testing.T) {
	const b, c, h, w = 2, 3, 2, 2
	r := rand.New(rand.NewSource(5))
	x := make([]float32, b*c*h*w)
	for i := range x {
		x[i] = float32(r.NormFloat64()*2 + 1)
	}
	ctx := context.New()
	fn := func(training bool) []float32 {
		exec := context.MustNewExec(backend(t), ctx.Reuse().Checked(false), func(ctx *context.Context, xn *graph.Node) *graph.Node {
			ctx.SetTraining(xn.Graph(), training)
			return batchNorm(ctx.In("bn"), xn)
		})
		return tensors.MustCopyFlatData[float32](exec.MustExec(tensors.FromFlatDataAndDimensions(x, b, c, h, w))[0])
	}
	y := fn(true)
	n := float64(b * h * w)
	for ch := 0; ch < c; ch++ {
		var vals []float64
		for bi := 0; bi < b; bi++ {
			for s := 0; s < h*w; s++ {
				vals = append(vals, float64(x[(bi*c+ch)*h*w+s]))
			}
		}
		mean, sq := 0.0, 0.0
		for _, v := range vals {
			mean += v / n
		}
		for _, v := range vals {
			sq += (v - mean) * (v - mean)
		}
		for bi := 0; bi < b; bi++ {
			for s := 0; s < h*w; s++ {
				i := (bi*c+ch)*h*w + s
				want := (float64(x[i]) - mean) / math.Sqrt(sq/n+1e-5)
				if math.Abs(float64(y[i])-want) > 1e-5 {
					t.Fatalf("training output [%d]: %g, want %g", i, y[i], want)
				}
			}
		}
		rm := tensors.MustCopyFlatData[float32](ctx.GetVariableByScopeAndName("/bn", "running_mean").MustValue())
		rv := tensors.MustCopyFlatData[float32](ctx.GetVariableByScopeAndName("/bn", "running_var").MustValue())
		if math.Abs(float64(rm[ch])-0.1*mean) > 1e-6 || math.Abs(float64(rv[ch])-(0.9+0.1*sq/(n-1))) > 1e-5 {
			t.Fatalf("channel %d running stats %g %g, want %g %g", ch, rm[ch], rv[ch], 0.1*mean, 0.9+0.1*sq/(n-1))
		}
	}
	// Inference uses the running statistics.
	rm := tensors.MustCopyFlatData[float32](ctx.GetVariableByScopeAndName("/bn", "running_mean").MustValue())
	rv := tensors.MustCopyFlatData[float32](ctx.GetVariableByScopeAndName("/bn", "running_var").MustValue())
	y = fn(false)
	for i := range x {
		ch := (i / (h * w)) % c
		want := (float64(x[i]) - float64(rm[ch])) / math.Sqrt(float64(rv[ch])+1e-5)
		if math.Abs(float64(y[i])-want) > 1e-5 {
			t.Fatalf("inference output [%d]: %g, want %g", i, y[i], want)
		}
	}
}

func maxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestStochasticDepth checks torchvision's row-mode StochasticDepth: in training each example is
// zeroed with probability p and survivors scaled by 1/(1-p); identity in inference.
func TestStochasticDepth(t *testing.T) {
	const n = 400
	ones := make([]float32, n*2)
	for i := range ones {
		ones[i] = 1
	}
	x := tensors.FromFlatDataAndDimensions(ones, n, 2, 1, 1)
	for _, training := range []bool{false, true} {
		exec := context.MustNewExec(backend(t), seededContext(31), func(ctx *context.Context, x *graph.Node) *graph.Node {
			ctx.SetTraining(x.Graph(), training)
			return stochasticDepth(ctx, x, 0.25)
		})
		y := tensors.MustCopyFlatData[float32](exec.MustExec(x)[0])
		dropped := 0
		for i := 0; i < n; i++ {
			a, b := y[2*i], y[2*i+1]
			if a != b {
				t.Fatalf("training=%v: example %d not dropped as a whole: %g %g", training, i, a, b)
			}
			switch {
			case !training && a != 1:
				t.Fatalf("inference changed the input: %g", a)
			case training && a == 0:
				dropped++
			case training && math.Abs(float64(a)-1/0.75) > 1e-6:
				t.Fatalf("training: survivor scaled to %g, want %g", a, 1/0.75)
			}
		}
		if training && (dropped < n/8 || dropped > n*3/8) {
			t.Fatalf("dropped %d of %d examples with p=0.25", dropped, n)
		}
	}
}
