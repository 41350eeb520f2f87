package models

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// ParamComputeDType is the context's graph parameter (Context.SetGraphParam, so that only that
// graph sees it) (a dtype name: "BFloat16"; ""/unset: float32) in
// which Build computes: the images and each variable's value are converted to it as the model
// reads them, while the variables themselves stay float32 (the optimizer updates float32
// weights; batch-norm running statistics are accumulated in float32). Build's outputs are
// float32 whatever it computes in. Training's precision: bf16 sets it (XLA backend only).
const ParamComputeDType = "artnet_compute_dtype"

// computeDType is the dtype ctx asks Build to compute in (Float32 by default).
func computeDType(ctx *context.Context, g *graph.Graph) dtypes.DType {
	name := context.GetGraphParamOr(ctx, g, ParamComputeDType, "")
	if name == "" {
		return dtypes.Float32
	}
	dt, err := dtypes.DTypeString(name)
	if err != nil || !dt.IsFloat() {
		panic("models: context parameter " + ParamComputeDType + ": " + name + " is not a float dtype")
	}
	return dt
}

// toCompute converts x to ctx's compute dtype (x itself when it is already that).
func toCompute(ctx *context.Context, x *graph.Node) *graph.Node {
	if dt := computeDType(ctx, x.Graph()); dt != x.DType() {
		return graph.ConvertDType(x, dt)
	}
	return x
}

// toFloat32 converts x to float32 (x itself when it is already).
func toFloat32(x *graph.Node) *graph.Node {
	if x.DType() != dtypes.Float32 {
		return graph.ConvertDType(x, dtypes.Float32)
	}
	return x
}
