package quantize

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/preprocess"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := onnxrt.Shutdown(); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// calibration returns the repository's WikiArt sample (train split) preprocessed for the
// built-in model, in batches of 4.
func calibration(t *testing.T, cfg spec.Config) ([][]float32, int) {
	t.Helper()
	files, err := CalibrationFiles(testenv.Sample(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	batches, n, err := LoadImages(context.Background(), files, preprocess.FromConfig(cfg), 4)
	if err != nil {
		t.Fatal(err)
	}
	return batches, n
}

func TestActParams(t *testing.T) {
	for _, c := range []struct {
		lo, hi float32
		signed bool
	}{{-1, 3, false}, {0, 6, false}, {-2, -1, false}, {0.5, 2, true}, {-3, 5, true}, {0, 0, false}} {
		p := actParams(c.lo, c.hi, c.signed)
		qmin, qmax := int32(0), int32(255)
		if c.signed {
			qmin, qmax = -128, 127
		}
		if p.zero < qmin || p.zero > qmax || !(p.scale > 0) {
			t.Errorf("range [%g,%g] signed %v: scale %g zero point %d out of range", c.lo, c.hi, c.signed, p.scale, p.zero)
		}
		// The ends of the range (widened to hold 0) must be representable to within a step.
		for _, x := range []float32{min(c.lo, 0), max(c.hi, 0)} {
			q := math.RoundToEven(float64(x/p.scale)) + float64(p.zero)
			if q < float64(qmin)-0.5 || q > float64(qmax)+0.5 {
				t.Errorf("range [%g,%g] signed %v: %g quantizes to %g, outside [%d,%d]", c.lo, c.hi, c.signed, x, q, qmin, qmax)
			}
		}
	}
}

func TestPerChannel(t *testing.T) {
	// Two output channels of 2×3 weights: channel 1 has a larger range.
	w := []float32{0.1, -0.2, 0.05, 0.3, 0, -0.1, 1, -2, 0.5, 0.25, 3, -1}
	dims := []int64{2, 1, 2, 3}
	q, s := perChannel(w, dims, 0, 127)
	if len(s) != 2 || math.Abs(float64(s[0]-0.3/127)) > 1e-9 || math.Abs(float64(s[1]-3.0/127)) > 1e-9 {
		t.Fatalf("scales %v, want [0.3/127, 3/127]", s)
	}
	for i, x := range w {
		c := i / 6
		if d := math.Abs(float64(float32(q[i])*s[c] - x)); d > float64(s[c])/2+1e-7 {
			t.Errorf("w[%d] = %g: dequantized %g, error %g > half a step", i, x, float32(q[i])*s[c], d)
		}
	}
	if q[3] != 127 || q[10] != 127 {
		t.Errorf("channel maxima quantize to %d, %d; want 127", q[3], q[10])
	}
	_, s7 := perChannel(w, dims, 0, 63)
	if math.Abs(float64(s7[1]-3.0/63)) > 1e-9 {
		t.Errorf("7-bit scale %g, want 3/63", s7[1])
	}
}

// TestModelDefault quantizes the built-in model on the repository's WikiArt sample and checks
// the file (QDQ structure, metadata, interface) and that ONNX Runtime's outputs stay close to the
// float model's on the calibration images.
func TestModelDefault(t *testing.T) {
	if err := onnxrt.Init(""); err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	fp := defaultmodel.Bytes()
	it, err := spec.ValidateONNX(defaultmodel.Name, fp)
	if err != nil {
		t.Fatal(err)
	}
	batches, n := calibration(t, it.Config)
	for _, act := range []string{Uint8, Int8} {
		t.Run(act, func(t *testing.T) {
			m, rep, err := Model(context.Background(), fp, Options{Batches: batches, Source: "sample", Activations: act, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			data, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := spec.ValidateONNX("quantized", data); err != nil {
				t.Fatal(err)
			}
			checkStructure(t, m, act)
			mi, err := spec.Inspect(data)
			if err != nil {
				t.Fatal(err)
			}
			var md Metadata
			if err := json.Unmarshal([]byte(mi.Metadata[spec.MetaQuantization]), &md); err != nil {
				t.Fatalf("metadata %s: %v", spec.MetaQuantization, err)
			}
			if md.Images != n || md.Method != DefaultMethod || md.Ops["Conv"] == 0 || md.Ops["Conv"] != rep.Ops["Conv"] {
				t.Errorf("metadata %+v: want %d images, method %s, the Conv count of the report %v", md, n, DefaultMethod, rep.Ops)
			}
			compareORT(t, fp, data, batches)
		})
	}
}

// checkStructure checks every quantized Conv: weight from DequantizeLinear(int8, one scale per
// output channel, axis 0), bias int32, input and output through QDQ pairs of the activation type.
func checkStructure(t *testing.T, m *onnxpb.ModelProto, act string) {
	t.Helper()
	g := m.GetGraph()
	inits := map[string]*onnxpb.TensorProto{}
	for _, x := range g.GetInitializer() {
		inits[x.GetName()] = x
	}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.Output {
			producer[o] = n
		}
	}
	wantZP := int32(onnxpb.TensorProto_UINT8)
	if act == Int8 {
		wantZP = int32(onnxpb.TensorProto_INT8)
	}
	convs := 0
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Conv" {
			continue
		}
		convs++
		dq := producer[n.Input[1]]
		if dq == nil || dq.GetOpType() != "DequantizeLinear" {
			t.Fatalf("Conv %s: weight %s not from DequantizeLinear", n.GetName(), n.Input[1])
		}
		w, s := inits[dq.Input[0]], inits[dq.Input[1]]
		if w.GetDataType() != int32(onnxpb.TensorProto_INT8) || len(s.GetDims()) != 1 || s.GetDims()[0] != w.GetDims()[0] {
			t.Fatalf("Conv %s: weight %v %v, scale dims %v: want int8 with one scale per output channel", n.GetName(), w.GetDataType(), w.GetDims(), s.GetDims())
		}
		if len(n.Input) > 2 {
			b := inits[producer[n.Input[2]].Input[0]]
			if b.GetDataType() != int32(onnxpb.TensorProto_INT32) {
				t.Fatalf("Conv %s: bias type %d, want int32", n.GetName(), b.GetDataType())
			}
		}
		in := producer[n.Input[0]]
		if in == nil || in.GetOpType() != "DequantizeLinear" || inits[in.Input[2]].GetDataType() != wantZP {
			t.Fatalf("Conv %s: input %s not dequantized from %s", n.GetName(), n.Input[0], act)
		}
	}
	if convs == 0 {
		t.Fatal("no Conv in the quantized model")
	}
}

// compareORT runs the float and the quantized model on the same images: the top-1 class of
// each task must agree on most images and the probabilities stay close.
func compareORT(t *testing.T, fp, q []byte, batches [][]float32) {
	t.Helper()
	opts := onnxrt.Options{IntraOpThreads: 2}
	a, err := onnxrt.OpenBytes("fp32", fp, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := onnxrt.OpenBytes("int8", q, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	size := a.Interface().Height
	agree, total, maxDiff := 0, 0, 0.0
	for _, x := range batches {
		n := len(x) / (3 * size * size)
		ra, err := a.Run(context.Background(), x, n)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Run(context.Background(), x, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range spec.Tasks {
			for i := 0; i < n; i++ {
				pa, pb := ra.Row(task, i), rb.Row(task, i)
				total++
				if evaluate.Argmax(pa) == evaluate.Argmax(pb) {
					agree++
				}
				for j := range pa {
					maxDiff = max(maxDiff, math.Abs(float64(pa[j]-pb[j])))
				}
			}
		}
	}
	t.Logf("top-1 agreement %d/%d, largest probability difference %.3f", agree, total, maxDiff)
	if float64(agree) < 0.8*float64(total) || maxDiff > 0.3 {
		t.Errorf("int8 vs fp32: top-1 agreement %d/%d (want ≥ 80%%), largest probability difference %.3f (want ≤ 0.3)", agree, total, maxDiff)
	}
}

func TestModelErrors(t *testing.T) {
	fp := defaultmodel.Bytes()
	it, err := spec.ValidateONNX(defaultmodel.Name, fp)
	if err != nil {
		t.Fatal(err)
	}
	one := make([]float32, 3*it.Height*it.Width)
	good := [][]float32{one}
	for _, c := range []struct {
		name string
		onnx []byte
		o    Options
		want string
	}{
		{"method", fp, Options{Batches: good, Method: "entropy"}, `calibration method "entropy"`},
		{"percentile", fp, Options{Batches: good, Percentile: 30}, "percentile 30"},
		{"activations", fp, Options{Batches: good, Activations: "fp8"}, `activation type "fp8"`},
		{"bits", fp, Options{Batches: good, WeightBits: 4}, "weight bits 4"},
		{"ops", fp, Options{Batches: good, Ops: []string{"LSTM"}}, `op type "LSTM"`},
		{"no images", fp, Options{}, "no calibration images"},
		{"bad batch", fp, Options{Batches: [][]float32{one[:7]}}, "calibration batch 0: 7 floats"},
		{"not onnx", []byte("hello"), Options{Batches: good}, "not an ONNX model"},
		{"no op", fp, Options{Batches: good, Ops: []string{"MatMul"}, Method: MinMax}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.want == "" {
				return // needs ORT; covered by TestModelDefault
			}
			_, _, err := Model(context.Background(), c.onnx, c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v: want one line containing %q", err, c.want)
			}
		})
	}
}

func TestModelRefusesQuantized(t *testing.T) {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(defaultmodel.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(spec.MetaQuantization), Value: ptr("{}")})
	data, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Model(context.Background(), data, Options{Batches: [][]float32{{0}}})
	if err == nil || !strings.Contains(err.Error(), "already converted") {
		t.Fatalf("error %v: want already converted", err)
	}
}

func TestCalibrationFiles(t *testing.T) {
	all, err := CalibrationFiles(testenv.Sample(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	three, err := CalibrationFiles(testenv.Sample(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(three) != 3 || three[0] != all[0] || len(all) <= 3 {
		t.Fatalf("3 of %d files: %v", len(all), three)
	}
	// A plain folder of images: every image file below it.
	plain, err := CalibrationFiles(testenv.Testdata(t, "paintings"), 0)
	if err != nil || len(plain) == 0 {
		t.Fatalf("paintings: %v, %v", plain, err)
	}
	if _, err := CalibrationFiles(t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), "no images") {
		t.Fatalf("empty folder: %v", err)
	}
}

func TestNonFloatTensors(t *testing.T) {
	vi := func(name string, dt onnxpb.TensorProto_DataType) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: ptr(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(dt))}}}}
	}
	cast := node("Cast", "c", []string{"x"}, "c")
	cast.Attribute = []*onnxpb.AttributeProto{{Name: ptr("to"), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(int64(onnxpb.TensorProto_INT64))}}
	g := &onnxpb.GraphProto{
		Input:       []*onnxpb.ValueInfoProto{vi("x", onnxpb.TensorProto_FLOAT), vi("ids", onnxpb.TensorProto_INT64)},
		Initializer: []*onnxpb.TensorProto{int32Tensor("one", nil, []int32{1}), floatTensor("half", nil, []float32{0.5})},
		Node: []*onnxpb.NodeProto{
			node("Shape", "s", []string{"x"}, "s"),
			node("Gather", "g", []string{"s", "ids"}, "g"),
			node("Add", "a", []string{"g", "one"}, "a"),
			cast,
			node("Mul", "m", []string{"x", "x"}, "m"),
			node("Mul", "h", []string{"m", "half"}, "h"),
			node("Add", "i", []string{"one", "one"}, "i"),
		},
	}
	nf := nonFloatTensors(g)
	for name, want := range map[string]bool{"s": true, "g": true, "a": true, "c": true, "ids": true, "one": true, "i": true,
		"x": false, "m": false, "h": false, "half": false} {
		if nf[name] != want {
			t.Errorf("tensor %s: non-float %v, want %v", name, nf[name], want)
		}
	}
	// The elementwise candidates skip the integer Add; the float Mul of activations stays.
	p, err := newPlan(g, map[string]bool{"Add": true, "Mul": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.nodes) != 1 || g.Node[p.nodes[0]].GetName() != "m" {
		var names []string
		for _, i := range p.nodes {
			names = append(names, g.Node[i].GetName())
		}
		t.Errorf("candidates %v, want [m]", names)
	}
}
