package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// TritonOptions configure a Triton Inference Server model repository.
type TritonOptions struct {
	Name             string        // model name (default "artnet")
	MaxBatch         int           // max_batch_size (default 32)
	MaxDelay         time.Duration // dynamic_batching max_queue_delay (default 5ms)
	GPU              bool          // instance_group KIND_GPU instead of KIND_CPU
	Instances        int           // instance_group count (default 1)
	PreferredBatches []int         // dynamic_batching preferred_batch_size (default 8 and MaxBatch)
}

func (o *TritonOptions) defaults() error {
	if o.Name == "" {
		o.Name = "artnet"
	}
	if strings.ContainsAny(o.Name, "/\\ \t\n\"") || o.Name == "." || o.Name == ".." {
		return fmt.Errorf("triton: model name %q: must be a plain folder name", o.Name)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 32
	}
	if o.MaxBatch < 1 {
		return fmt.Errorf("triton: max batch %d: must be ≥ 1", o.MaxBatch)
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 5 * time.Millisecond
	}
	if o.MaxDelay < 0 {
		return fmt.Errorf("triton: max delay %v: must be ≥ 0", o.MaxDelay)
	}
	if o.Instances == 0 {
		o.Instances = 1
	}
	if len(o.PreferredBatches) == 0 {
		o.PreferredBatches = []int{min(8, o.MaxBatch), o.MaxBatch}
		if o.MaxBatch <= 8 {
			o.PreferredBatches = []int{o.MaxBatch}
		}
	}
	for _, b := range o.PreferredBatches {
		if b < 1 || b > o.MaxBatch {
			return fmt.Errorf("triton: preferred batch size %d: must be in [1, %d]", b, o.MaxBatch)
		}
	}
	return nil
}

// TritonConfig returns the config.pbtxt of an artnet model for Triton's ONNX Runtime backend:
// input spec.InputName FP32 [3,H,W], outputs spec.OutputNames (the tasks with class-name label
// files, then attention), max_batch_size and dynamic batching.
func TritonConfig(cfg spec.Config, o TritonOptions) (string, error) {
	if err := o.defaults(); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Triton model configuration written by artnet %s (DeepArtNet %s, %dx%d input).\n", spec.Version, cfg.Variant, cfg.ImageSize, cfg.ImageSize)
	fmt.Fprintf(&b, "name: %q\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: %d\n", o.Name, o.MaxBatch)
	fmt.Fprintf(&b, "input [\n  {\n    name: %q\n    data_type: TYPE_FP32\n    dims: [ 3, %d, %d ]\n  }\n]\n", spec.InputName, cfg.ImageSize, cfg.ImageSize)
	b.WriteString("output [\n")
	for _, task := range spec.Tasks {
		fmt.Fprintf(&b, "  {\n    name: %q\n    data_type: TYPE_FP32\n    dims: [ %d ]\n    label_filename: %q\n  },\n", task, cfg.NumClasses(task), task+"_labels.txt")
	}
	fmt.Fprintf(&b, "  {\n    name: %q\n    data_type: TYPE_FP32\n    dims: [ %d ]\n  }\n]\n", spec.OutputAttention, cfg.Tokens())
	pref := make([]string, len(o.PreferredBatches))
	for i, p := range o.PreferredBatches {
		pref[i] = fmt.Sprint(p)
	}
	fmt.Fprintf(&b, "dynamic_batching {\n  preferred_batch_size: [ %s ]\n  max_queue_delay_microseconds: %d\n}\n", strings.Join(pref, ", "), o.MaxDelay.Microseconds())
	kind := "KIND_CPU"
	if o.GPU {
		kind = "KIND_GPU"
	}
	fmt.Fprintf(&b, "instance_group [\n  {\n    count: %d\n    kind: %s\n  }\n]\n", o.Instances, kind)
	return b.String(), nil
}

// WriteTriton writes a Triton model repository into dir:
//
//	dir/<name>/config.pbtxt
//	dir/<name>/{style,genre,artist}_labels.txt
//	dir/<name>/1/model.onnx
//
// The model folder is built beside its final place and renamed into it, so an existing model
// folder is replaced whole or not at all.
func WriteTriton(dir string, m *onnxpb.ModelProto, cfg spec.Config, o TritonOptions) (err error) {
	if m == nil {
		return errors.New("triton: nil model")
	}
	conf, err := TritonConfig(cfg, o)
	if err != nil {
		return err
	}
	_ = o.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("triton: %w", err)
	}
	out, err := atomicfile.CreateDir(filepath.Join(dir, o.Name), 0o755)
	if err != nil {
		return fmt.Errorf("triton: %w", err)
	}
	defer out.Abort()
	tmp := out.TempPath()
	files := map[string]string{"config.pbtxt": conf}
	for _, task := range spec.Tasks {
		files[task+"_labels.txt"] = strings.Join(cfg.Classes[task], "\n") + "\n"
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("triton: %w", err)
		}
	}
	if err := os.Mkdir(filepath.Join(tmp, "1"), 0o755); err != nil {
		return fmt.Errorf("triton: %w", err)
	}
	if err := WriteModel(filepath.Join(tmp, "1", "model.onnx"), m); err != nil {
		return fmt.Errorf("triton: %w", err)
	}
	if err := out.Commit(); err != nil { // fsyncs the tree, swaps it in
		return fmt.Errorf("triton: %w", err)
	}
	return nil
}
