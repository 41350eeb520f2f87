package benchmark

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/google/pprof/profile"
)

// OpShare is the CPU time a profile spent in one kind of op.
type OpShare struct {
	Op       string  // backend op type ("Mul", "ReduceSum", "DotGeneral", …) or a group (see OpBreakdown)
	Seconds  float64 // CPU seconds (all threads)
	Fraction float64 // of the profile's total CPU time
}

// Package prefixes whose functions OpBreakdown attributes to ops.
const (
	simplegoPkg = "github.com/gomlx/gomlx/backends/simplego."
	enginePkg   = "github.com/artnet/artnet/engine."
)

// OpBreakdown reads a CPU profile (runtime/pprof's format) and splits its CPU time by GoMLX op
// type: each sample goes to the outermost function of its stack that executes an op — simplego's
// exec<Op>… functions and their closures (worker goroutines included), so that
// "execMulNumericGeneric[float32]" → Mul, "execDotGeneralLarge.func1" → DotGeneral,
// "execConvNoDilationGeneric" → ConvGeneral — or artnet's graph package ("graph.<Func>", e.g.
// fast kernels). Samples outside any op are grouped as "other (…)" by their outermost frame's
// package: the executor's bookkeeping, buffer management, garbage collection, the runtime.
// Shares are sorted by time, largest first.
func OpBreakdown(r io.Reader) ([]OpShare, error) {
	p, err := profile.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("cpu profile: no \"cpu\" sample type (got %d types): not a CPU profile", len(p.SampleType))
	}
	byOp := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		byOp[sampleOp(s)] += v
	}
	if total == 0 {
		return nil, nil
	}
	out := make([]OpShare, 0, len(byOp))
	for op, v := range byOp {
		out = append(out, OpShare{Op: op, Seconds: float64(v) / 1e9, Fraction: float64(v) / float64(total)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seconds != out[j].Seconds {
			return out[i].Seconds > out[j].Seconds
		}
		return out[i].Op < out[j].Op
	})
	return out, nil
}

// sampleOp is the op a sample's stack belongs to: the outermost frame that names an op type
// (dispatchers such as simplego's execReduce, which serves every reduction, name none and are
// looked through), else the outermost exec function, else "other (<package>)".
func sampleOp(s *profile.Sample) string {
	var outer, fallback string
	for i := len(s.Location) - 1; i >= 0; i-- { // root first
		lines := s.Location[i].Line
		for j := len(lines) - 1; j >= 0; j-- { // inlined frames: the caller is last
			if lines[j].Function == nil {
				continue
			}
			name := lines[j].Function.Name
			if outer == "" {
				outer = name
			}
			op, known := functionOp(name)
			if known {
				return op
			}
			if fallback == "" {
				fallback = op
			}
		}
	}
	if fallback != "" {
		return fallback
	}
	return "other (" + funcPackage(outer) + ")"
}

// FunctionOp maps a profiled function name to the op it executes: the backend op type for
// simplego's exec<Op>… functions and DotGeneral's kernel helpers ("exec<Name>" for dispatchers
// that name no op type); "<Op> (artnet)" for artnet's executors and kernels in graph/ and
// engine/internal/kernels (the broadcasting binary ops share one executor, so they are one row);
// "" otherwise (artnet's other graph functions included: they are looked through).
func FunctionOp(name string) string {
	op, _ := functionOp(name)
	return op
}

// artnetOps maps artnet's executor and kernel function names (prefixes, after the package) to
// the op they run.
var artnetOps = []struct{ prefix, op string }{
	{"binaryExecutor", "Add/Sub/Mul/Div/Max/Min (artnet)"},
	{"binaryKernel", "Add/Sub/Mul/Div/Max/Min (artnet)"},
	{"BinaryBroadcast", "Add/Sub/Mul/Div/Max/Min (artnet)"},
	{"vv", "Add/Sub/Mul/Div/Max/Min (artnet)"},
	{"vs", "Add/Sub/Mul/Div/Max/Min (artnet)"},
	{"sv", "Add/Sub/Mul/Div/Max/Min (artnet)"},
	{"scalarOp", "Add/Sub/Mul/Div/Max/Min (artnet)"},
	{"unaryKernel", "Logistic/Tanh/Exp/… (artnet)"},
	{"Unary", "Logistic/Tanh/Exp/… (artnet)"},
	{"reduceExecutor", "ReduceSum/ReduceMax (artnet)"},
	{"reduceKernel", "ReduceSum/ReduceMax (artnet)"},
	{"Reduce", "ReduceSum/ReduceMax (artnet)"},
	{"reduceRun", "ReduceSum/ReduceMax (artnet)"},
	{"reduceRows", "ReduceSum/ReduceMax (artnet)"},
	{"BroadcastCopy", "BroadcastInDim (artnet)"},
	{"Depthwise", "ConvGeneral (artnet)"},
	{"Transpose", "Transpose (artnet)"},
	{"execFused", "fused elementwise (artnet)"},
	{"Fused", "fused elementwise (artnet)"},
	{"fusedGo", "fused elementwise (artnet)"},
	{"logistic32", "Logistic/Tanh/Exp/… (artnet)"},
	{"filterGradPadded", "ConvGeneral (artnet)"},
	{"Gemm", "DotGeneral (artnet)"},
	{"gemm", "DotGeneral (artnet)"},
}

// simplegoHelpers maps simplego functions outside exec<Op>… (run by worker goroutines) to ops.
var simplegoHelpers = []struct{ prefix, op string }{
	{"buildDotGeneralKernel", "DotGeneral"},
	{"dg", "DotGeneral"},
}

// functionOp is FunctionOp that also says whether op is an op (known) or only a fallback name.
func functionOp(name string) (op string, known bool) {
	for _, pkg := range []string{enginePkg, enginePkg[:len(enginePkg)-1] + "/internal/kernels."} {
		rest, ok := strings.CutPrefix(name, pkg)
		if !ok {
			continue
		}
		f := goFuncName(rest)
		for _, e := range artnetOps {
			if strings.HasPrefix(f, e.prefix) {
				return e.op, true
			}
		}
		if after, ok := strings.CutPrefix(f, "exec"); ok {
			if t := opTypePrefix(after); t != "" {
				return t + " (artnet)", true
			}
		}
		return "", false // install wrappers, parallel loops: look further in
	}
	rest, ok := strings.CutPrefix(name, simplegoPkg)
	if !ok {
		return "", false
	}
	for _, e := range simplegoHelpers {
		if strings.HasPrefix(rest, e.prefix) {
			return e.op, true
		}
	}
	rest, ok = strings.CutPrefix(rest, "exec")
	if !ok {
		return "", false
	}
	best := opTypePrefix(rest)
	if best == "" {
		f, _, _ := strings.Cut(rest, ".")
		f, _, _ = strings.Cut(f, "[")
		return "exec" + f, false
	}
	return best, true
}

// opTypePrefix is the longest backend op type name (or alias) that prefixes s: "ReduceSum" over
// "Reduce…", "DotGeneral" over "Dot"; "" when none does.
func opTypePrefix(s string) string {
	best := ""
	for _, t := range backends.OpTypeValues() {
		n := t.String()
		if len(n) > len(best) && strings.HasPrefix(s, n) && n != "Invalid" && n != "Last" {
			best = n
		}
	}
	alias := ""
	for a, t := range execAliases {
		if len(a) > len(alias) && len(a) > len(best) && strings.HasPrefix(s, a) {
			alias, best = a, t
		}
	}
	return best
}

// goFuncName strips a function name of its type parameters, pointer receiver marks and
// closure suffixes: "(*Builder).ConvGeneral.func2" → "Builder.ConvGeneral".
func goFuncName(f string) string {
	if i := strings.Index(f, "["); i >= 0 {
		if j := strings.LastIndex(f, "]"); j > i {
			f = f[:i] + f[j+1:]
		}
	}
	f = strings.NewReplacer("(*", "", "(", "", ")", "").Replace(f)
	parts := strings.Split(f, ".")
	for len(parts) > 1 && strings.HasPrefix(parts[len(parts)-1], "func") {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, ".")
}

// execAliases are simplego exec functions not named after their op type.
var execAliases = map[string]string{
	"Conv":                 "ConvGeneral",
	"NormalizedDotGeneral": "DotGeneral",
}

// funcPackage is the package path of a function name ("runtime", "github.com/…/simplego").
func funcPackage(name string) string {
	if name == "" {
		return "unknown"
	}
	slash := strings.LastIndex(name, "/")
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}

// PrintOpBreakdown writes shares as a table (at most top rows, the rest summed; top ≤ 0: all).
func PrintOpBreakdown(w io.Writer, shares []OpShare, top int) error {
	if _, err := fmt.Fprintf(w, "%8s %8s  %s\n", "share", "CPU s", "op type"); err != nil {
		return err
	}
	var restS, restF float64
	for i, s := range shares {
		if top > 0 && i >= top {
			restS += s.Seconds
			restF += s.Fraction
			continue
		}
		if _, err := fmt.Fprintf(w, "%6.1f %% %8.2f  %s\n", 100*s.Fraction, s.Seconds, s.Op); err != nil {
			return err
		}
	}
	if restS > 0 {
		_, err := fmt.Fprintf(w, "%6.1f %% %8.2f  (%d more)\n", 100*restF, restS, len(shares)-top)
		return err
	}
	return nil
}
