package export_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/onnxpb"
	"github.com/artnet/artnet/onnxrt"
)

// goBackend evaluates the reference outputs. ops_sequential: simplego v0.26 can deadlock when
// inter-op parallelism runs DotGenerals that wait for workers themselves (seen on 2 cores).
var goBackend backends.Backend

func backend(t testing.TB) backends.Backend {
	t.Helper()
	if goBackend == nil {
		b, err := engine.NewBackend("go:ops_sequential")
		if err != nil {
			t.Fatalf("GoMLX backend: %v", err)
		}
		goBackend = b
	}
	return goBackend
}

// newContext returns a GoMLX context whose variable initializers draw from a fixed seed, so a
// parity test sees the same weights on every run: without ParamInitialSeed GoMLX seeds from
// crypto/rand, and a test with discontinuous ops (Floor, Round, Rem, ArgMax) could then meet an
// input at a rounding boundary only on some runs.
func newContext() *context.Context {
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(1))
	return ctx
}

// randInput returns n pseudo-random values in [-1, 1).
func randInput(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float32, n)
	for i := range out {
		out[i] = r.Float32()*2 - 1
	}
	return out
}

// gomlxRun evaluates fn on the pure-Go backend (initializing ctx's variables if needed).
func gomlxRun(t testing.TB, ctx *context.Context, fn func(*context.Context, *graph.Node) []*graph.Node, x []float32, dims []int) [][]float32 {
	t.Helper()
	in := tensors.FromFlatDataAndDimensions(x, dims...)
	outs, err := context.ExecOnceN(backend(t), ctx.Checked(false), fn, in)
	if err != nil {
		t.Fatalf("GoMLX run: %v", err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

// ortRun runs the model in ONNX Runtime on one float32 input; it returns outputs and their shapes.
func ortRun(t testing.TB, m *onnxpb.ModelProto, x []float32, dims []int) ([][]float32, [][]int64) {
	t.Helper()
	if err := onnxrt.Init(""); err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	inName := m.GetGraph().GetInput()[0].GetName()
	var outNames []string
	for _, o := range m.GetGraph().GetOutput() {
		outNames = append(outNames, o.GetName())
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{inName}, outNames, nil)
	if err != nil {
		t.Fatalf("ORT session: %v", err)
	}
	defer sess.Destroy()
	d64 := make([]int64, len(dims))
	for i, d := range dims {
		d64[i] = int64(d)
	}
	in, err := ort.NewTensor(ort.NewShape(d64...), x)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(outNames))
	if err := sess.Run([]ort.Value{in}, outs); err != nil {
		t.Fatalf("ORT run: %v", err)
	}
	res := make([][]float32, len(outs))
	shp := make([][]int64, len(outs))
	for i, o := range outs {
		ten, ok := o.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("output %s: not a float32 tensor (%T)", outNames[i], o)
		}
		res[i] = append([]float32(nil), ten.GetData()...)
		shp[i] = ten.GetShape()
		o.Destroy()
	}
	return res, shp
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = max(m, d)
	}
	return m
}

// checkParity exports fn, then compares GoMLX and ORT outputs at the given batch sizes.
func checkParity(t *testing.T, ctx *context.Context, fn func(*context.Context, *graph.Node) []*graph.Node,
	inShape []int, outNames []string, batches []int, tol float64) *onnxpb.ModelProto {
	t.Helper()
	// Initialize the variables with one GoMLX run first.
	dims0 := append([]int{1}, inShape...)
	gomlxRun(t, ctx, fn, randInput(1, prod(dims0)), dims0)
	m, err := export.Graph(ctx, "x", inShape, fn, outNames, map[string]string{"k": "v"})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	for _, b := range batches {
		dims := append([]int{b}, inShape...)
		x := randInput(uint64(b)+10, prod(dims))
		want := gomlxRun(t, ctx, fn, x, dims)
		got, shp := ortRun(t, m, x, dims)
		for i := range want {
			if shp[i][0] != int64(b) {
				t.Errorf("batch %d output %s: ORT shape %v", b, outNames[i], shp[i])
			}
			d := maxAbsDiff(want[i], got[i])
			t.Logf("batch %d output %s: %d values, max abs diff %.3g", b, outNames[i], len(want[i]), d)
			if !(d <= tol) {
				t.Errorf("batch %d output %s: max abs diff %.3g > %g", b, outNames[i], d, tol)
			}
		}
	}
	return m
}

func prod(d []int) int {
	p := 1
	for _, x := range d {
		p *= x
	}
	return p
}

// onnxCheck runs Debian python3-onnx's full checker on m; it fails the test if the checker
// rejects the model, and skips it with one line (fails with ARTNET_REQUIRE_DEPS=1) when
// python3-onnx is missing.
func onnxCheck(t *testing.T, m *onnxpb.ModelProto) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := export.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/python3", "-c", "import onnx").CombinedOutput(); err != nil {
		testenv.Missing(t, "the onnx module in /usr/bin/python3 for the ONNX checker ("+lastLine(string(out))+")", "apt-get install python3-onnx")
	}
	out, err := exec.Command("/usr/bin/python3", "-c",
		"import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True)", path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker rejected the exported model: %v\n%s", err, out)
	}
}

func opCounts(m *onnxpb.ModelProto) string {
	c := map[string]int{}
	for _, n := range m.GetGraph().GetNode() {
		c[n.GetOpType()]++
	}
	return fmt.Sprint(c)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// lastLine is the last non-empty line of s (a Python traceback's error line).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
