package export

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Names of the exported DeepArtNet's input and outputs (see the spec's ONNX interface).
const (
	InputName       = "image"
	OutputAttention = "attention"
)

// OutputNames are the exported DeepArtNet's outputs in order: one softmax per task
// (spec.Tasks), then the attention weights.
func OutputNames() []string {
	return append(append([]string(nil), spec.Tasks...), OutputAttention)
}

// Model exports DeepArtNet: models.Build(ctx, cfg, image) → outputs style, genre, artist (Probs)
// and attention, metadata cfg.Metadata(). ctx must hold the model's variables (e.g. from
// models.LoadCheckpoint).
func Model(ctx *context.Context, cfg spec.Config) (*onnxpb.ModelProto, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: %s", errtext.OneLine(err))
	}
	fn := func(ctx *context.Context, x *graph.Node) []*graph.Node {
		o := models.Build(ctx, cfg, x)
		outs := make([]*graph.Node, 0, len(spec.Tasks)+1)
		for _, t := range spec.Tasks {
			outs = append(outs, o.Probs[t])
		}
		return append(outs, o.Attention)
	}
	// The unrolled BiLSTM (thousands of ops at 7×7 tokens) becomes one ONNX LSTM node per layer.
	fuse := &lstmFusion{scope: "/" + models.ScopeEncoder + "/lstm", hidden: cfg.LSTMHidden, layers: cfg.LSTMLayers}
	return exportGraph(ctx, InputName, []int{3, cfg.ImageSize, cfg.ImageSize}, fn, OutputNames(), cfg.Metadata(),
		[]*lstmFusion{fuse})
}
