package export

import (
	"fmt"
	"os"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Model exports DeepArtNet: models.Build(ctx, cfg, image) → the ONNX contract of models/spec:
// input spec.InputName, outputs spec.OutputNames() (style, genre, artist Probs, then attention),
// metadata cfg.Metadata(). ctx must hold the model's variables (e.g. from
// models.LoadCheckpoint).
func Model(ctx *context.Context, cfg spec.Config) (*onnxpb.ModelProto, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: %s", errtext.OneLine(err))
	}
	fn := func(ctx *context.Context, x *graph.Node) []*graph.Node {
		return models.Build(ctx, cfg, x).Ordered()
	}
	// The unrolled BiLSTM (thousands of ops at 7×7 tokens) becomes one ONNX LSTM node per layer.
	fuse := &lstmFusion{scope: "/" + models.ScopeEncoder + "/lstm", hidden: cfg.LSTMHidden, layers: cfg.LSTMLayers}
	return exportGraph(ctx, spec.InputName, []int{3, cfg.ImageSize, cfg.ImageSize}, fn, spec.OutputNames(), cfg.Metadata(),
		[]*lstmFusion{fuse})
}

// WriteModel writes an exported artnet model to path atomically, and checks the written file
// with spec.ValidateONNX — the check the runtime makes before it loads a model — before renaming
// it into place: a file the runtime would refuse is never installed (the old one stays).
func WriteModel(path string, m *onnxpb.ModelProto) error {
	data, err := marshal(path, m)
	if err != nil {
		return err
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	written, err := os.ReadFile(f.Name())
	if err != nil {
		return fmt.Errorf("export: write %s: reading it back: %w", path, err)
	}
	if _, err := spec.ValidateONNX(path, written); err != nil {
		return fmt.Errorf("export: not written, the runtime would refuse it: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
