package export_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
	"github.com/artnet/artnet/preprocess"
)

// fp16Tolerance is the largest difference allowed between the float16 and the float32 model's
// outputs (probabilities and attention weights, in [0, 1]) in ONNX Runtime on the CPU.
const fp16Tolerance = 0.01

// TestFloat16 converts the built-in model to float16 and compares it with the float32 model in
// ONNX Runtime (CPU) on the repository's paintings: same interface, outputs within
// fp16Tolerance, same top-1 class per task.
func TestFloat16(t *testing.T) {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(defaultmodel.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	h, err := export.Float16(&m)
	if err != nil {
		t.Fatal(err)
	}
	onnxCheck(t, h)
	path := filepath.Join(t.TempDir(), "fp16.onnx")
	if err := export.WriteModel(path, h); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := spec.Inspect(data)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Metadata[spec.MetaPrecision] != "fp16" {
		t.Errorf("metadata %s = %q, want fp16", spec.MetaPrecision, mi.Metadata[spec.MetaPrecision])
	}
	f32, f16 := 0, 0
	for _, x := range h.GetGraph().GetInitializer() {
		switch x.GetDataType() {
		case int32(onnxpb.TensorProto_FLOAT):
			f32++
		case int32(onnxpb.TensorProto_FLOAT16):
			f16++
		}
	}
	if f32 != 0 || f16 == 0 {
		t.Errorf("initializers: %d float32, %d float16; want all float ones in float16", f32, f16)
	}
	it, err := spec.ValidateONNX("fp32", defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	o := preprocess.FromConfig(it.Config)
	var x []float32
	paintings := []string{testenv.StarryNight, "paintings/edvard-munch_the-scream.jpg"}
	for _, p := range paintings {
		img, err := preprocess.DecodeFile(testenv.Testdata(t, p), o)
		if err != nil {
			t.Fatal(err)
		}
		x = append(x, img...)
	}
	dims := []int{len(paintings), 3, it.Height, it.Width}
	want, _ := ortRun(t, &m, x, dims)
	got, _ := ortRun(t, h, x, dims)
	for i, name := range spec.OutputNames() {
		d := maxAbsDiff(got[i], want[i])
		t.Logf("%s: largest difference %.2g", name, d)
		if d > fp16Tolerance {
			t.Errorf("output %s: float16 differs from float32 by %.3g > %g", name, d, fp16Tolerance)
		}
		if name == spec.OutputAttention {
			continue
		}
		n := len(want[i]) / len(paintings)
		for b := range paintings {
			if evaluate.Argmax(got[i][b*n:(b+1)*n]) != evaluate.Argmax(want[i][b*n:(b+1)*n]) {
				t.Errorf("output %s, painting %d: top-1 differs", name, b)
			}
		}
	}
	if _, err := export.Float16(h); err == nil || !strings.Contains(err.Error(), "already converted") {
		t.Errorf("converting twice: %v, want already converted", err)
	}
}

func TestFloat16OutOfRange(t *testing.T) {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(defaultmodel.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	var w *onnxpb.TensorProto
	for _, x := range m.GetGraph().GetInitializer() {
		if x.GetDataType() == int32(onnxpb.TensorProto_FLOAT) {
			w = x
			break
		}
	}
	w.RawData, w.FloatData, w.Dims = nil, []float32{1e6}, []int64{1}
	_, err := export.Float16(&m)
	if err == nil || !strings.Contains(err.Error(), w.GetName()) || !strings.Contains(err.Error(), "65504") {
		t.Fatalf("error %v: want the tensor %q and float16's range named", err, w.GetName())
	}
}
