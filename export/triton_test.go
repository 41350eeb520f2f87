package export

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

func TestWriteTritonRepository(t *testing.T) {
	cfg := spec.Tiny()
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(runtimetest.TinyModel(cfg), &m); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteTriton(dir, &m, cfg, TritonOptions{MaxBatch: 16}); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "artnet", "config.pbtxt"))
	if err != nil {
		t.Fatal(err)
	}
	h, w := cfg.Grid()
	for _, want := range []string{
		`name: "artnet"`, `platform: "onnxruntime_onnx"`, "max_batch_size: 16",
		`name: "image"`, "dims: [ 3, 64, 64 ]",
		`name: "style"`, "dims: [ 27 ]", `label_filename: "style_labels.txt"`,
		`name: "genre"`, "dims: [ 10 ]", `name: "artist"`, "dims: [ 23 ]",
		`name: "attention"`, "dims: [ " + itoa(h*w) + " ]",
		"dynamic_batching {", "preferred_batch_size: [ 8, 16 ]", "max_queue_delay_microseconds: 5000", "kind: KIND_CPU",
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config.pbtxt lacks %q:\n%s", want, conf)
		}
	}
	if strings.Count(string(conf), "{") != strings.Count(string(conf), "}") {
		t.Errorf("unbalanced braces in config.pbtxt:\n%s", conf)
	}
	for _, task := range spec.Tasks {
		b, err := os.ReadFile(filepath.Join(dir, "artnet", task+"_labels.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(lines) != cfg.NumClasses(task) || lines[1] != cfg.Classes[task][1] {
			t.Errorf("%s labels: %d lines, want %d in class order", task, len(lines), cfg.NumClasses(task))
		}
	}
	mod, err := onnxrt.Open(filepath.Join(dir, "artnet", "1", "model.onnx"), onnxrt.Options{})
	if err != nil {
		t.Fatalf("repository model does not load: %v", err)
	}
	mod.Close()
	// Rewriting replaces the model folder whole and leaves no temporary folders.
	if err := WriteTriton(dir, &m, cfg, TritonOptions{MaxBatch: 4, GPU: true}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "artnet" {
		t.Errorf("repository holds %v, want only artnet/", entries)
	}
	if conf, _ := os.ReadFile(filepath.Join(dir, "artnet", "config.pbtxt")); !strings.Contains(string(conf), "kind: KIND_GPU") || !strings.Contains(string(conf), "preferred_batch_size: [ 4 ]") {
		t.Errorf("rewritten config:\n%s", conf)
	}
	for _, bad := range []TritonOptions{{Name: "a/b"}, {MaxBatch: -1}, {MaxBatch: 8, PreferredBatches: []int{9}}} {
		if err := WriteTriton(t.TempDir(), &m, cfg, bad); err == nil || !strings.HasPrefix(err.Error(), "triton: ") {
			t.Errorf("%+v: want a triton error, got %v", bad, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
