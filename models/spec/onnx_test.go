package spec_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

func TestInspectTiny(t *testing.T) {
	cfg := spec.Tiny()
	mi, err := spec.Inspect(runtimetest.TinyModel(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if mi.IRVersion != 8 || mi.Opsets[""] != 17 || mi.Producer != "artnet-runtimetest" {
		t.Errorf("ir %d opsets %v producer %q", mi.IRVersion, mi.Opsets, mi.Producer)
	}
	if len(mi.Metadata) != len(cfg.Metadata()) || mi.Metadata[spec.MetaTokensGrid] != "4x4" {
		t.Errorf("metadata %v", mi.Metadata)
	}
	// Initializers (mask, weights) are not inputs.
	if len(mi.Inputs) != 1 || mi.Inputs[0].ShapeString() != "[batch,3,64,64]" {
		t.Fatalf("inputs %+v", mi.Inputs)
	}
	var outs []string
	for _, o := range mi.Outputs {
		outs = append(outs, o.Name+o.ShapeString())
	}
	if got := strings.Join(outs, " "); got != "style[batch,27] genre[batch,10] artist[batch,23] attention[batch,16]" {
		t.Errorf("outputs %s", got)
	}
	it, err := mi.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if it.Height != 64 || it.Width != 64 || it.Tokens != 16 || it.GridH != 4 || it.Classes["artist"] != 23 {
		t.Errorf("interface %+v", it)
	}
}

func TestInspectRejects(t *testing.T) {
	tiny := runtimetest.TinyModel(spec.Tiny())
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": tiny[:len(tiny)/2],
		"text":      []byte("hello, this is a text file\n"),
		"no graph":  mustMarshal(t, &onnxpb.ModelProto{IrVersion: proto.Int64(8)}),
	} {
		if _, err := spec.Inspect(b); err == nil || !strings.HasPrefix(err.Error(), "not an ONNX model") {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An initializer listed among the graph inputs (as IR < 4 exporters do) is not an input.
func TestInspectInitializerInput(t *testing.T) {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(runtimetest.TinyModel(spec.Tiny()), &mp); err != nil {
		t.Fatal(err)
	}
	mp.Graph.Input = append(mp.Graph.Input, &onnxpb.ValueInfoProto{Name: proto.String("W_style")})
	mi, err := spec.Inspect(mustMarshal(t, &mp))
	if err != nil {
		t.Fatal(err)
	}
	if len(mi.Inputs) != 1 {
		t.Fatalf("inputs %+v", mi.Inputs)
	}
	// A real second input is rejected.
	mp.Graph.Input = append(mp.Graph.Input, &onnxpb.ValueInfoProto{Name: proto.String("extra")})
	mi, err = spec.Inspect(mustMarshal(t, &mp))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mi.Validate(); err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("two inputs: err %v", err)
	}
}

func TestValidateFields(t *testing.T) {
	tiny := runtimetest.TinyModel(spec.Tiny())
	cases := []struct {
		name string
		mod  func(*spec.ModelInfo)
		want string
	}{
		{"output dtype", func(mi *spec.ModelInfo) { mi.Outputs[1].ElemType = 7 }, `output "genre": element type int64, want float32`},
		{"output rank", func(mi *spec.ModelInfo) { mi.Outputs[0].Shape = mi.Outputs[0].Shape[:1] }, `output "style": shape [batch] has rank 1`},
		{"input name", func(mi *spec.ModelInfo) { mi.Inputs[0].Name = "input" }, `input "input": want name "image"`},
		{"input channels", func(mi *spec.ModelInfo) { mi.Inputs[0].Shape[1].Value = 1 }, `input "image": shape [batch,1,64,64]`},
		{"input not tensor", func(mi *spec.ModelInfo) { mi.Inputs[0].Tensor = false }, `input "image": not a tensor`},
		{"no inputs", func(mi *spec.ModelInfo) { mi.Inputs = nil }, "want exactly one input"},
		{"missing attention", func(mi *spec.ModelInfo) { mi.Outputs = mi.Outputs[:3] }, `output "attention" missing`},
		{"class count in metadata", func(mi *spec.ModelInfo) { mi.Metadata[spec.MetaClassPrefix+"genre"] = `["a","b"]` }, spec.MetaClassPrefix + "genre"},
		{"input size metadata", func(mi *spec.ModelInfo) { mi.Metadata[spec.MetaInputSize] = "32x32" }, spec.MetaInputSize},
		{"no tokens grid", func(mi *spec.ModelInfo) { delete(mi.Metadata, spec.MetaTokensGrid) }, spec.MetaTokensGrid},
		{"no config", func(mi *spec.ModelInfo) { delete(mi.Metadata, spec.MetaConfig) }, "not an artnet model"},
		{"bad config", func(mi *spec.ModelInfo) { mi.Metadata[spec.MetaConfig] = `{"variant":"b9"}` }, "not an artnet model"},
	}
	for _, c := range cases {
		mi, err := spec.Inspect(tiny)
		if err != nil {
			t.Fatal(err)
		}
		c.mod(mi)
		_, err = mi.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want one line containing %q", c.name, err, c.want)
		}
	}
	// Unknown or symbolic class/size dimensions are accepted (ORT checks them at run time).
	mi, _ := spec.Inspect(tiny)
	mi.Outputs[0].Shape[1] = spec.Dim{Value: -1, Param: "n_style"}
	mi.Outputs[3].HasShape, mi.Outputs[3].Shape = false, nil
	if _, err := mi.Validate(); err != nil {
		t.Errorf("symbolic dims: %v", err)
	}
}

func TestValidateONNX(t *testing.T) {
	cfg := spec.Tiny()
	if it, err := spec.ValidateONNX("ok.onnx", runtimetest.TinyModel(cfg)); err != nil || it.Tokens != cfg.Tokens() {
		t.Fatalf("valid model: %v", err)
	}
	_, err := spec.ValidateONNX("bad.onnx", runtimetest.Model{Config: cfg, Rename: map[string]string{"style": "Style"}}.Bytes())
	if err == nil || !strings.HasPrefix(err.Error(), `model bad.onnx: output "style" missing`) {
		t.Fatalf("renamed output: err %v", err)
	}
	_, err = spec.ValidateONNX("junk.onnx", []byte{0x0a, 0xff})
	if err == nil || !strings.HasPrefix(err.Error(), "model junk.onnx: not an ONNX model") {
		t.Fatalf("junk: err %v", err)
	}
}

// BenchmarkInspect measures reading the interface and metadata without ORT.
func BenchmarkInspect(b *testing.B) {
	onnx := runtimetest.TinyModel(spec.Tiny())
	for b.Loop() {
		if _, err := spec.Inspect(onnx); err != nil {
			b.Fatal(err)
		}
	}
}

// OutputNames is the contract's order (tasks, then attention) and a fresh slice each call, so
// no caller can change another's.
func TestOutputNames(t *testing.T) {
	got := spec.OutputNames()
	if strings.Join(got, ",") != "style,genre,artist,attention" {
		t.Fatalf("OutputNames() = %q", got)
	}
	got[0] = "changed"
	if spec.OutputNames()[0] != "style" {
		t.Error("OutputNames returns a shared slice")
	}
}
