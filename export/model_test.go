package export_test

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// randomizeRank1 gives every rank-1 variable (batch-norm weight, bias, running mean and
// variance; linear biases) non-trivial values, so that batch-norm folding errors show.
func randomizeRank1(t *testing.T, ctx *context.Context) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	n := 0
	for v := range ctx.IterVariables() {
		s := v.Shape()
		if s.Rank() != 1 {
			continue
		}
		vals := make([]float32, s.Size())
		for i := range vals {
			switch v.Name() {
			case "running_var", "weight", "variance", "scale", "mean_of_squares":
				vals[i] = 0.5 + r.Float32()
			default:
				vals[i] = 0.4*r.Float32() - 0.2
			}
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, s.Dimensions...)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no rank-1 variables found")
	}
}

func TestModelParityTiny(t *testing.T) {
	cfg := spec.Tiny()
	ctx := newContext()
	fn := func(ctx *context.Context, x *graph.Node) []*graph.Node {
		o := models.Build(ctx, cfg, x)
		return []*graph.Node{o.Probs["style"], o.Probs["genre"], o.Probs["artist"], o.Attention}
	}
	inShape := []int{3, cfg.ImageSize, cfg.ImageSize}
	gomlxRun(t, ctx, fn, randInput(1, prod(inShape)), append([]int{1}, inShape...)) // creates the variables
	randomizeRank1(t, ctx)

	m, err := export.Model(ctx, cfg)
	if err != nil {
		t.Fatalf("export.Model: %v", err)
	}
	data, _ := proto.Marshal(m)
	t.Logf("exported Tiny: %d nodes, %d initializers, %d bytes; %s", len(m.GetGraph().GetNode()),
		len(m.GetGraph().GetInitializer()), len(data), opCounts(m))

	// The BiLSTM is fused: one ONNX LSTM per layer, no unrolled recurrence.
	lstms := 0
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "LSTM" {
			lstms++
		}
	}
	if lstms != cfg.LSTMLayers {
		t.Errorf("%d LSTM nodes, want %d (one per layer)", lstms, cfg.LSTMLayers)
	}

	// The backbone's convolutions are all ONNX Convs with their batch norms folded in: one Conv
	// per rank-4 weight of the backbone and projection (squeeze-excitation's fc1/fc2 included: each SE block is
	// GlobalAveragePool → 1×1 Convs), no MatMul in the backbone nor on a [1,O,C] weight, no Mul/Add/Sub by a rank-4
	// constant (a batch norm's [1,C,1,1]) left.
	convs, ses := 0, 0
	for v := range ctx.IterVariables() {
		if (strings.HasPrefix(v.Scope(), "/"+models.ScopeBackbone+"/"+models.ScopeFeatures+"/") ||
			v.Scope() == "/"+models.ScopeBackbone+"/"+models.ScopeProj) && v.Name() == "weight" && v.Shape().Rank() == 4 {
			convs++
			if strings.HasSuffix(v.Scope(), "/fc1") {
				ses++
			}
		}
	}
	if got := opCount(m, "GlobalAveragePool"); ses == 0 || got != ses {
		t.Errorf("%d GlobalAveragePool nodes, want %d (one per squeeze-excitation)", got, ses)
	}
	initDims := map[string]int{}
	for _, in := range m.GetGraph().GetInitializer() {
		initDims[in.GetName()] = len(in.GetDims())
	}
	gotConvs := 0
	for _, n := range m.GetGraph().GetNode() {
		switch n.GetOpType() {
		case "Conv":
			gotConvs++
		case "MatMul", "Mul", "Add", "Sub":
			if n.GetOpType() == "MatMul" && strings.HasPrefix(n.GetName(), "/"+models.ScopeBackbone+"/"+models.ScopeFeatures+"/") {
				t.Errorf("MatMul %s left in the backbone", n.GetName())
			}
			for _, in := range n.GetInput() {
				if r := initDims[in]; (n.GetOpType() == "MatMul" && r == 3) || (n.GetOpType() != "MatMul" && r == 4) {
					t.Errorf("%s %s has a rank-%d constant %s: a 1×1 conv or batch norm not fused", n.GetOpType(), n.GetName(), r, in)
				}
			}
		}
	}
	if convs == 0 || gotConvs != convs {
		t.Errorf("%d Conv nodes, the backbone has %d convolutions", gotConvs, convs)
	}

	// Folding must not duplicate weights: initializers hold at most the variables plus small constants.
	vars, inits := 0, 0
	for v := range ctx.IterVariables() {
		vars += v.Shape().Size()
	}
	for _, t := range m.GetGraph().GetInitializer() {
		n := 1
		for _, d := range t.GetDims() {
			n *= int(d)
		}
		inits += n
	}
	t.Logf("variables %d values, initializers %d values", vars, inits)
	if inits > vars+1000 {
		t.Errorf("initializers hold %d values, the variables only %d: weights duplicated", inits, vars)
	}

	// The runtime's own validation of an artnet model must accept it.
	it, err := spec.ValidateONNX("exported", data)
	if err != nil {
		t.Fatal(err)
	}
	if it.Tokens != cfg.Tokens() {
		t.Errorf("tokens %d, want %d", it.Tokens, cfg.Tokens())
	}
	meta := cfg.Metadata()
	if got := len(m.GetMetadataProps()); got != len(meta) {
		t.Errorf("%d metadata props, want %d", got, len(meta))
	}
	for _, p := range m.GetMetadataProps() {
		if meta[p.GetKey()] != p.GetValue() {
			t.Errorf("metadata %q = %q, want %q", p.GetKey(), p.GetValue(), meta[p.GetKey()])
		}
	}
	onnxCheck(t, m)
	if p := os.Getenv("ARTNET_EXPORT_DUMP"); p != "" { // for inspecting the exported graph by hand
		if err := export.WriteFile(p, m); err != nil {
			t.Fatal(err)
		}
	}

	names := spec.OutputNames()
	for _, b := range testBatches {
		dims := append([]int{b}, inShape...)
		x := randInput(uint64(100+b), prod(dims))
		want := gomlxRun(t, ctx, fn, x, dims)
		got, shp := ortRun(t, m, x, dims)
		for i, name := range names {
			wantCols := cfg.Tokens()
			if i < len(spec.Tasks) {
				wantCols = cfg.NumClasses(spec.Tasks[i])
			}
			if len(shp[i]) != 2 || shp[i][0] != int64(b) || shp[i][1] != int64(wantCols) {
				t.Errorf("batch %d %s: ORT shape %v, want [%d %d]", b, name, shp[i], b, wantCols)
			}
			d := maxAbsDiff(want[i], got[i])
			t.Logf("batch %d %s: max abs diff %.3g", b, name, d)
			if !(d <= 1e-4) {
				t.Errorf("batch %d %s: GoMLX vs ORT max abs diff %.3g > 1e-4", b, name, d)
			}
		}
	}
}

func TestModelBadConfig(t *testing.T) {
	cfg := spec.Tiny()
	cfg.ImageSize = 0
	_, err := export.Model(newContext(), cfg)
	if err == nil {
		t.Fatal("no error for image_size 0")
	}
	t.Log(err)
}

// BenchmarkModelExportDefault exports the spec's full model (B4, 224×224, 7×7 tokens) with
// freshly initialized weights and reports its size.
// Run: go test -run XXX -bench ModelExportDefault -benchtime 1x ./export/
func BenchmarkModelExportDefault(b *testing.B) {
	cfg := spec.Default()
	ctx := newContext()
	g := graph.NewGraph(backend(b), "init")
	x := graph.Parameter(g, "image", shapes.Make(dtypes.Float32, 1, 3, cfg.ImageSize, cfg.ImageSize))
	models.Build(ctx, cfg, x) // creates the variables (no values yet)
	if err := ctx.InitializeVariables(backend(b), nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := export.Model(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			data, err := proto.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(m.GetGraph().GetNode())), "nodes")
			b.ReportMetric(float64(len(data))/1e6, "MB")
			b.Logf("B4 224: %d nodes, %d initializers, %.1f MB; %s", len(m.GetGraph().GetNode()),
				len(m.GetGraph().GetInitializer()), float64(len(data))/1e6, opCounts(m))
			if p := os.Getenv("ARTNET_EXPORT_DUMP"); p != "" {
				if err := export.WriteFile(p, m); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkModelParityDefault checks GoMLX vs ONNX Runtime on the spec's full model (B4,
// 224×224) at batch 2 with random weights and reports the largest difference over the four
// outputs (metric maxdiff); it fails above 1e-4. Slow (the pure-Go B4 forward takes tens of
// seconds), hence a benchmark: go test -run XXX -bench ModelParityDefault -benchtime 1x ./export/
func BenchmarkModelParityDefault(b *testing.B) {
	cfg := spec.Default()
	ctx := newContext()
	fn := func(ctx *context.Context, x *graph.Node) []*graph.Node {
		o := models.Build(ctx, cfg, x)
		return []*graph.Node{o.Probs["style"], o.Probs["genre"], o.Probs["artist"], o.Attention}
	}
	dims := []int{2, 3, cfg.ImageSize, cfg.ImageSize}
	x := randInput(9, prod(dims))
	for i := 0; i < b.N; i++ {
		want := gomlxRun(b, ctx, fn, x, dims)
		m, err := export.Model(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		got, _ := ortRun(b, m, x, dims)
		worst := 0.0
		for j := range want {
			worst = max(worst, maxAbsDiff(want[j], got[j]))
		}
		b.Logf("B4 batch 2: max abs diff %.3g; style[0:3] GoMLX %v ORT %v", worst, want[0][:3], got[0][:3])
		b.ReportMetric(worst, "maxdiff")
		if !(worst <= 1e-4) {
			b.Fatalf("B4: GoMLX vs ORT max abs diff %.3g > 1e-4", worst)
		}
	}
}
