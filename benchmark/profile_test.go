package benchmark

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func TestFunctionOp(t *testing.T) {
	for name, want := range map[string]string{
		"github.com/gomlx/gomlx/backends/simplego.execMulNumericGeneric[go.shape.float32]":  "Mul",
		"github.com/gomlx/gomlx/backends/simplego.execReduceSumGeneric[go.shape.float32]":   "ReduceSum",
		"github.com/gomlx/gomlx/backends/simplego.execDotGeneralLarge.func1":                "DotGeneral",
		"github.com/gomlx/gomlx/backends/simplego.execNormalizedDotGeneralGeneric[...]":     "DotGeneral",
		"github.com/gomlx/gomlx/backends/simplego.execConvNoDilationGeneric[...]":           "ConvGeneral",
		"github.com/gomlx/gomlx/backends/simplego.execBroadcastInDim":                       "BroadcastInDim",
		"github.com/gomlx/gomlx/backends/simplego.execReduce":                               "execReduce",
		"github.com/artnet/artnet/engine.execBroadcastInDim":                                "BroadcastInDim (artnet)",
		"github.com/artnet/artnet/engine.binaryExecutor.func1":                              "Add/Sub/Mul/Div/Max/Min (artnet)",
		"github.com/artnet/artnet/engine.init.0.reduceExecutor.func4":                       "",
		"github.com/artnet/artnet/engine/internal/kernels.Reduce[go.shape.float32].func2":   "ReduceSum/ReduceMax (artnet)",
		"github.com/artnet/artnet/engine/internal/kernels.BroadcastCopy[go.shape.float32]":  "BroadcastInDim (artnet)",
		"github.com/artnet/artnet/engine/internal/kernels.parallelFor.func1":                "",
		"github.com/artnet/artnet/engine.init.0.init.0.func1.func3":                         "",
		"github.com/gomlx/gomlx/backends/simplego.buildDotGeneralKernel[float32].func1":     "DotGeneral",
		"github.com/gomlx/gomlx/backends/simplego.dgCopyFlatToBlockShape[go.shape.float32]": "DotGeneral",
		"runtime.mallocgc": "",
		"github.com/gomlx/gomlx/backends/simplego.(*Executable).Execute": "",
	} {
		if got := FunctionOp(name); got != want {
			t.Errorf("FunctionOp(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestOpBreakdown builds a CPU profile with known stacks and checks the split: the outermost
// op-type frame wins (execReduce is looked through), time outside ops goes to its package.
func TestOpBreakdown(t *testing.T) {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
	}
	loc := map[string]*profile.Location{}
	at := func(name string) *profile.Location {
		if l, ok := loc[name]; ok {
			return l
		}
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name}
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
		p.Location = append(p.Location, l)
		loc[name] = l
		return l
	}
	sample := func(ms int64, stackLeafFirst ...string) {
		var ls []*profile.Location
		for _, n := range stackLeafFirst {
			ls = append(ls, at(n))
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: ls, Value: []int64{ms / 10, ms * 1_000_000}})
	}
	const sg = "github.com/gomlx/gomlx/backends/simplego."
	sample(600, sg+"(*broadcastIterator).Next", sg+"execMulNumericGeneric[go.shape.float32]", sg+"execMul", sg+"(*Executable).Execute")
	sample(250, sg+"(*reduceOutputIterator).next", sg+"execReduceSumGeneric[go.shape.float32]", sg+"execReduce", sg+"(*Executable).Execute")
	sample(100, sg+"execDotGeneralLarge.func1", sg+"(*workersPool).run.func1")
	sample(50, "runtime.mallocgc", "runtime.gcBgMarkWorker")
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	shares, err := OpBreakdown(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []OpShare{{"Mul", 0.6, 0.6}, {"ReduceSum", 0.25, 0.25}, {"DotGeneral", 0.1, 0.1}, {"other (runtime)", 0.05, 0.05}}
	if len(shares) != len(want) {
		t.Fatalf("OpBreakdown = %+v, want %+v", shares, want)
	}
	for i := range want {
		if shares[i].Op != want[i].Op || abs(shares[i].Seconds-want[i].Seconds) > 1e-9 || abs(shares[i].Fraction-want[i].Fraction) > 1e-9 {
			t.Errorf("share %d = %+v, want %+v", i, shares[i], want[i])
		}
	}
	var out strings.Builder
	if err := PrintOpBreakdown(&out, shares, 2); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "60.0 %") || !strings.Contains(s, "ReduceSum") || !strings.Contains(s, "(2 more)") || strings.Contains(s, "DotGeneral") {
		t.Errorf("PrintOpBreakdown(top 2):\n%s", s)
	}
	if _, err := OpBreakdown(strings.NewReader("not a profile")); err == nil {
		t.Error("OpBreakdown of garbage: no error")
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
