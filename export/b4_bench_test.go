package export_test

import (
	gocontext "context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/internal/cpustat"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
	"github.com/artnet/artnet/onnxrt"
)

// Environment of BenchmarkB4ORT.
const (
	// EnvBenchONNX names an artnet ONNX file to measure instead of exporting B4 (e.g. the file
	// of tools/torchref/torch_onnx_b4.py); the export sub-benchmark is then skipped.
	envBenchONNX = "ARTNET_BENCH_ONNX"
	// envBenchThreads sets ORT's intra-op threads (default 2).
	envBenchThreads = "ARTNET_BENCH_THREADS"
	// envBenchProfile, a path prefix, adds an ORT profile of batch-1 runs (per-op-type times
	// logged, JSON kept at prefix_<date>.json) and ORT's optimized graph (prefix.optimized.onnx,
	// its op counts logged).
	envBenchProfile = "ARTNET_BENCH_PROFILE"
	// envBenchReference names another ONNX file of the same model (e.g. a rewritten copy): both
	// run a batch of 2 and the largest output difference is logged.
	envBenchReference = "ARTNET_BENCH_REFERENCE"
	// envBenchVs names another artnet ONNX file to race against on the same inputs: the
	// sub-benchmarks vs/batch=N alternate one run of each (order swapped every pair) and report
	// the median of the per-pair time ratios (this / other). Load from other processes changes
	// slowly compared with one run, so the ratio is far steadier than separate measurements on a
	// shared machine.
	envBenchVs = "ARTNET_BENCH_VS"
)

// BenchmarkB4ORT measures the spec's full DeepArtNet (spec.Default(): B4, 224×224, 7×7 tokens,
// random weights) exported by artnet and run in ONNX Runtime on the CPU with 2 intra-op threads:
//
//	export    export.Model + proto.Marshal (metric s/export)
//	open      onnxrt.OpenBytes + Close (metric ms/open); the file's MB, its size over
//	          4 bytes × parameter count (x4params), node count, and op counts in the log
//	batch=N   onnxrt.Model.Run at N = 1, 8, 32 after one warm-up run (ms/image, images/s, and
//	          cpu-ms/image: the process's CPU time, which includes ORT's spinning threads)
//
// With ARTNET_BENCH_ONNX=path the same harness measures that artnet ONNX file instead (no export).
// ARTNET_BENCH_VS=path adds vs/batch=N: paired, alternating runs against another file (median
// time ratio), the steadier comparison on a loaded machine.
//
//	go test -run XXX -bench B4ORT -benchtime 3s -count 3 ./export/
//	ARTNET_BENCH_ONNX=/tmp/torch_b4.onnx go test -run XXX -bench B4ORT ./export/
func BenchmarkB4ORT(b *testing.B) {
	threads := 2
	if s := os.Getenv(envBenchThreads); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a thread count >= 1", envBenchThreads, s)
		}
		threads = n
	}
	if err := onnxrt.Init(""); err != nil {
		b.Fatalf("ONNX Runtime: %v", err)
	}
	var (
		name    string
		data    []byte
		nparams int
	)
	if p := os.Getenv(envBenchONNX); p != "" {
		var err error
		if data, err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
		name = p
		mi, err := spec.Inspect(data)
		if err != nil {
			b.Fatalf("%s: %v", p, err)
		}
		cfg, err := spec.FromMetadata(mi.Metadata)
		if err != nil {
			b.Fatalf("%s: %v", p, err)
		}
		sum, err := models.Summarize(cfg)
		if err != nil {
			b.Fatal(err)
		}
		nparams = sum.Counts[models.PartTotal]
		b.Logf("%s: producer %q, IR %d, opsets %v, variant %s %dpx; metadata equal to spec.Default().Metadata(): %v",
			p, mi.Producer, mi.IRVersion, mi.Opsets, cfg.Variant, cfg.ImageSize, sameMetadata(mi.Metadata, spec.Default().Metadata()))
	} else {
		name = "artnet-b4.onnx"
		cfg := spec.Default()
		ctx := b4Variables(b, cfg)
		nparams = models.ParamCounts(ctx)[models.PartTotal]
		b.Run("export", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m, err := export.Model(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if data, err = proto.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/export")
		})
		if data == nil { // export filtered out by -bench
			m, err := export.Model(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if data, err = proto.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
		if p := os.Getenv("ARTNET_EXPORT_DUMP"); p != "" {
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	opts := onnxrt.Options{IntraOpThreads: threads}

	b.Run("open", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m, err := onnxrt.OpenBytes(name, data, opts)
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
		b.ReportMetric(float64(len(data))/1e6, "MB")
		b.ReportMetric(float64(len(data))/(4*float64(nparams)), "x4params")
		b.ReportMetric(float64(len(mp.GetGraph().GetNode())), "nodes")
		b.Logf("%s: %d bytes, %d parameters (size / 4·params = %.3f), %d nodes, %d initializers; ops %s",
			name, len(data), nparams, float64(len(data))/(4*float64(nparams)), len(mp.GetGraph().GetNode()),
			len(mp.GetGraph().GetInitializer()), sortedOpCounts(&mp))
	})

	m, err := onnxrt.OpenBytes(name, data, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			b.Error(err)
		}
	}()
	it := m.Interface()
	if ref := os.Getenv(envBenchReference); ref != "" {
		compareORT(b, m, ref, opts)
	}
	for _, batch := range []int{1, 8, 32} {
		x := randInput(uint64(batch), batch*3*it.Height*it.Width)
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := gocontext.Background()
			if _, err := m.Run(ctx, x, batch); err != nil { // warm-up: ORT allocates its arena
				b.Fatal(err)
			}
			cpu0 := cpustat.Process()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Run(ctx, x, batch); err != nil {
					b.Fatal(err)
				}
			}
			perImage := b.Elapsed().Seconds() / float64(b.N*batch)
			b.ReportMetric(perImage*1e3, "ms/image")
			b.ReportMetric(1/perImage, "images/s")
			// Process CPU time (user+sys) per image: less sensitive than wall time to other
			// processes on a shared machine, but it includes ORT's spinning worker threads.
			b.ReportMetric(cpustat.MillisPer(cpu0, b.N*batch), "cpu-ms/image")
		})
	}
	if vs := os.Getenv(envBenchVs); vs != "" {
		racePaired(b, m, vs, opts)
	}
	if prefix := os.Getenv(envBenchProfile); prefix != "" {
		profileORT(b, data, it.Height, threads, prefix)
	}
}

// racePaired alternates runs of m and of the model in file other at batch 1, 8, 32.
func racePaired(b *testing.B, m *onnxrt.Model, other string, opts onnxrt.Options) {
	r, err := onnxrt.Open(other, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	it := m.Interface()
	for _, batch := range []int{1, 8, 32} {
		x := randInput(uint64(batch), batch*3*it.Height*it.Width)
		b.Run(fmt.Sprintf("vs/batch=%d", batch), func(b *testing.B) {
			ctx := gocontext.Background()
			timed := func(mod *onnxrt.Model) float64 {
				t0 := time.Now()
				if _, err := mod.Run(ctx, x, batch); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0).Seconds() * 1e3 / float64(batch)
			}
			timed(m) // warm-up
			timed(r)
			var mine, theirs, ratio []float64
			for i := 0; i < b.N; i++ {
				var a, o float64
				if i%2 == 0 {
					a = timed(m)
					o = timed(r)
				} else {
					o = timed(r)
					a = timed(m)
				}
				mine, theirs, ratio = append(mine, a), append(theirs, o), append(ratio, a/o)
			}
			b.ReportMetric(median(mine), "ms/image")
			b.ReportMetric(median(theirs), "vs-ms/image")
			b.ReportMetric(median(ratio), "ratio")
			b.Logf("batch %d, %d pairs: ms/image this min %.1f median %.1f, %s min %.1f median %.1f; ratio this/other median %.3f (min %.3f, max %.3f)",
				batch, b.N, minOf(mine), median(mine), other, minOf(theirs), median(theirs), median(ratio), minOf(ratio), maxOf(ratio))
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// compareORT runs m and the model in file ref on the same batch of 2 and logs the largest
// absolute difference per output.
func compareORT(b *testing.B, m *onnxrt.Model, ref string, opts onnxrt.Options) {
	r, err := onnxrt.Open(ref, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	it := m.Interface()
	x := randInput(2, 2*3*it.Height*it.Width)
	got, err := m.Run(gocontext.Background(), x, 2)
	if err != nil {
		b.Fatal(err)
	}
	want, err := r.Run(gocontext.Background(), x, 2)
	if err != nil {
		b.Fatal(err)
	}
	var diffs []string
	for _, name := range spec.OutputNames() {
		diffs = append(diffs, fmt.Sprintf("%s %.3g", name, maxAbsDiff(got.Row(name, 0), want.Row(name, 0))+maxAbsDiff(got.Row(name, 1), want.Row(name, 1))))
	}
	b.Logf("outputs vs %s (batch 2, max abs diff of row 0 + row 1): %s; style[0][:3] %v vs %v; row 0 vs row 1 of style differ by %.3g",
		ref, strings.Join(diffs, ", "), got.Row("style", 0)[:3], want.Row("style", 0)[:3], maxAbsDiff(got.Row("style", 0), got.Row("style", 1)))
}

// b4Variables creates and randomly initializes cfg's variables (one GoMLX graph build).
func b4Variables(b *testing.B, cfg spec.Config) *context.Context {
	ctx := newContext()
	g := graph.NewGraph(backend(b), "init")
	x := graph.Parameter(g, "image", shapes.Make(dtypes.Float32, 1, 3, cfg.ImageSize, cfg.ImageSize))
	models.Build(ctx, cfg, x)
	g.Finalize()
	if err := ctx.InitializeVariables(backend(b), nil); err != nil {
		b.Fatal(err)
	}
	return ctx
}

func sameMetadata(a, b map[string]string) bool {
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// sortedOpCounts lists op types by decreasing count.
func sortedOpCounts(m *onnxpb.ModelProto) string {
	c := map[string]int{}
	for _, n := range m.GetGraph().GetNode() {
		c[n.GetOpType()]++
	}
	return sortedCounts(c, func(v int) string { return strconv.Itoa(v) })
}

func sortedCounts[V int | float64](c map[string]V, format func(V) string) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + format(c[k])
	}
	return strings.Join(parts, ", ")
}

// profileORT opens a plain ORT session with profiling and the optimized-graph dump enabled,
// runs 10 batch-1 inferences, and logs ORT's optimized op counts and the kernel time per op type.
func profileORT(b *testing.B, data []byte, size, threads int, prefix string) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		b.Fatal(err)
	}
	optPath := prefix + ".optimized.onnx"
	if err := so.SetOptimizedModelFilePath(optPath); err != nil {
		b.Fatal(err)
	}
	if err := so.EnableProfiling(prefix); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{spec.InputName}, spec.OutputNames(), so)
	if err != nil {
		b.Fatal(err)
	}
	in, err := ort.NewTensor(ort.NewShape(1, 3, int64(size), int64(size)), randInput(1, 3*size*size))
	if err != nil {
		b.Fatal(err)
	}
	defer in.Destroy()
	const runs = 10
	for i := 0; i < runs+1; i++ {
		outs := make([]ort.Value, len(spec.OutputNames()))
		if err := sess.Run([]ort.Value{in}, outs); err != nil {
			b.Fatal(err)
		}
		for _, o := range outs {
			o.Destroy()
		}
	}
	if err := sess.Destroy(); err != nil { // writes the profile
		b.Fatal(err)
	}
	if ob, err := os.ReadFile(optPath); err == nil {
		var om onnxpb.ModelProto
		if err := proto.Unmarshal(ob, &om); err == nil {
			b.Logf("ORT-optimized graph (%s): %d nodes; ops %s", optPath, len(om.GetGraph().GetNode()), sortedOpCounts(&om))
		}
	}
	files, _ := filepath.Glob(prefix + "_*.json")
	var newest string
	var newestT time.Time
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(start) && st.ModTime().After(newestT) {
			newest, newestT = f, st.ModTime()
		}
	}
	if newest == "" {
		b.Fatalf("no ORT profile %s_*.json written", prefix)
	}
	raw, err := os.ReadFile(newest)
	if err != nil {
		b.Fatal(err)
	}
	var events []struct {
		Cat  string `json:"cat"`
		Name string `json:"name"`
		Dur  int64  `json:"dur"` // µs
		Args struct {
			OpName string `json:"op_name"`
		} `json:"args"`
	}
	if err := json.Unmarshal(raw, &events); err != nil {
		b.Fatalf("%s: %v", newest, err)
	}
	perOp := map[string]float64{}
	var total, runTotal float64
	nRuns := 0
	for _, e := range events {
		switch {
		case e.Cat == "Node" && strings.HasSuffix(e.Name, "_kernel_time"):
			perOp[e.Args.OpName] += float64(e.Dur) / 1e3 / (runs + 1)
			total += float64(e.Dur) / 1e3 / (runs + 1)
		case e.Cat == "Session" && e.Name == "model_run":
			runTotal += float64(e.Dur) / 1e3
			nRuns++
		}
	}
	b.Logf("ORT profile %s: %d runs, %.1f ms/run wall, kernels %.1f ms/run; ms/run per op type: %s", newest, nRuns,
		runTotal/float64(max(nRuns, 1)), total, sortedCounts(perOp, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }))
}
