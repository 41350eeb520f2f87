package export_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// TestWriteModelValidates: WriteModel installs an artnet model the runtime accepts, and refuses
// (leaving the old file and no temporary one) a model the runtime would refuse.
func TestWriteModelValidates(t *testing.T) {
	var good onnxpb.ModelProto
	if err := proto.Unmarshal(runtimetest.TinyModel(spec.Tiny()), &good); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := export.WriteModel(path, &good); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.ValidateONNX(path, data); err != nil {
		t.Fatalf("written model: %v", err)
	}

	bad := proto.Clone(&good).(*onnxpb.ModelProto)
	bad.Graph.Output[0].Name = proto.String("Style")
	err = export.WriteModel(path, bad)
	if err == nil || !strings.Contains(err.Error(), `output "style" missing`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("a model with a renamed output: err %v, want the runtime's one-line refusal naming %s", err, path)
	}
	if now, _ := os.ReadFile(path); string(now) != string(data) {
		t.Error("the refused model replaced the old file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only m.onnx", len(entries))
	}
	noMeta := proto.Clone(&good).(*onnxpb.ModelProto)
	noMeta.MetadataProps = nil
	if err := export.WriteModel(filepath.Join(dir, "n.onnx"), noMeta); err == nil || !strings.Contains(err.Error(), "not an artnet model") {
		t.Errorf("a model without artnet metadata: err %v", err)
	}
}
