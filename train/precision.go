package train

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// forwardBF16 runs model in bfloat16 (precision: bf16): models.Build converts the images and
// every weight to BFloat16 as it reads them (models.ParamComputeDType), the variables — and so
// the optimizer's update, the batch-norm statistics and the checkpoints — stay float32, and the
// logits come back float32 for the loss. bf16 has float32's exponent range, so no loss scaling
// is needed. A ModelFn other than DeepArtNet gets bf16 images and must cope with them.
func forwardBF16(ctx *gomlxcontext.Context, cfg spec.Config, model ModelFn, images *graph.Node) map[string]*graph.Node {
	ctx.SetGraphParam(images.Graph(), models.ParamComputeDType, dtypes.BFloat16.String()) // this graph only
	logits := model(ctx, cfg, images)
	out := make(map[string]*graph.Node, len(logits))
	for k, v := range logits {
		if v.DType() != dtypes.Float32 {
			v = graph.ConvertDType(v, dtypes.Float32)
		}
		out[k] = v
	}
	return out
}
