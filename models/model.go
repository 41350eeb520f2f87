package models

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"

	"github.com/artnet/artnet/models/spec"
)

// Outputs are the graph nodes Build returns.
type Outputs struct {
	Logits    map[string]*graph.Node // task ("style","genre","artist") → [B, N]
	Probs     map[string]*graph.Node // softmax of Logits
	Attention *graph.Node            // [B, tokens]
}

// Variable scopes. Every variable sits at the scope of its PyTorch module path with "." → "/",
// under its PyTorch parameter name, so TorchName/ScopeAndName convert between the two.
const (
	ScopeBackbone  = "backbone"
	ScopeFeatures  = "features" // inside ScopeBackbone
	ScopeProj      = "proj"     // inside ScopeBackbone
	ScopeEncoder   = "encoder"
	ScopeAttention = "attention"
	ScopeHeads     = "heads"
)

// Build builds DeepArtNet for cfg on images [B,3,H,W] float32 (normalized NCHW).
// Training mode comes from GoMLX's convention (ctx.IsTraining(g)): dropout, batch-norm batch
// statistics (and running-statistics updates) and stochastic depth only in training.
//
// Variables are created in ctx (or reused when ctx.Reuse() is given, e.g. after
// LoadCheckpoint); see the package documentation for their scopes and names. The context
// parameter ParamDepthwise selects how depthwise convolutions are computed (by default the
// fastest way for the graph's backend; the function is the same). Every output node comes after
// all of the model's variables in the graph (see the comment at the end of Build).
//
// Like every GoMLX model function, Build panics on invalid input (a config that fails Validate,
// images of the wrong shape or dtype); context.Exec and graph.NewGraph-based callers turn that
// into an error.
func Build(ctx *context.Context, cfg spec.Config, images *graph.Node) Outputs {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Errorf("models.Build: %w", err))
	}
	arch, err := Architecture(cfg)
	if err != nil {
		panic(fmt.Errorf("models.Build: %w", err))
	}
	s := images.Shape()
	if s.Rank() != 4 || s.Dimensions[1] != 3 || s.DType != dtypes.Float32 {
		panic(fmt.Errorf("models.Build: images must be float32 [batch, 3, H, W], got %s", s))
	}

	feats := Backbone(ctx.In(ScopeBackbone).In(ScopeFeatures), arch, toCompute(ctx, images)) // [B, C, H', W']; ParamComputeDType
	tokens := project(ctx.In(ScopeBackbone).In(ScopeProj), feats, cfg.ProjDim)
	seq := BiLSTM(ctx.In(ScopeEncoder).In("lstm"), tokens, cfg.LSTMHidden, cfg.LSTMLayers)
	context_, alpha := attention(ctx.In(ScopeAttention), seq, cfg.AttnDim)

	out := Outputs{Logits: map[string]*graph.Node{}, Probs: map[string]*graph.Node{}, Attention: alpha}
	for _, task := range spec.Tasks {
		hctx := ctx.In(ScopeHeads).In(task)
		h := relu(linear(hctx.In("0"), context_, cfg.HeadHidden, true))
		h = layers.DropoutStatic(hctx, h, cfg.Dropout)
		logits := linear(hctx.In("3"), h, cfg.NumClasses(task), true)
		out.Logits[task] = logits
		out.Probs[task] = graph.Softmax(logits, -1)
	}
	// The pure-Go backend sizes its execution to the highest output node and fails ("index out of
	// range") when a parameter (variable) node comes after every output, e.g. when a caller uses
	// only Probs["style"]: the other heads' variables are created later. Identity nodes created
	// after every variable of the model keep each output after all of them.
	for _, task := range spec.Tasks {
		out.Logits[task] = identity(toFloat32(out.Logits[task]))
		out.Probs[task] = identity(toFloat32(out.Probs[task]))
	}
	out.Attention = identity(toFloat32(out.Attention))
	return out
}

// identity is an Identity node that passes gradients through (GoMLX's Identity has none).
func identity(x *Node) *Node {
	return graph.IdentityWithCustomGradient(x, func(_, v *Node) *Node { return v })
}

// convBNAct is torchvision's Conv2dNormActivation: ctx.In("0") conv without bias, ctx.In("1")
// BatchNorm2d, then SiLU when act.
func convBNAct(ctx *context.Context, x *Node, out, k, stride, groups int, act bool) *Node {
	x = conv2d(ctx.In("0"), x, out, k, stride, groups, kaimingNormalFanOut(ctx))
	x = batchNorm(ctx.In("1"), x)
	if act {
		x = silu(x)
	}
	return x
}

// Backbone is torchvision's efficientnet_bN().features (truncated to arch's stages) on NCHW
// images; ctx is the features scope. It returns [B, HeadChannels, H', W'].
func Backbone(ctx *context.Context, arch Arch, images *Node) *Node {
	out, _ := BackboneStages(ctx, arch, images)
	return out
}

// BackboneStages is Backbone that also returns the output of each features.{i} module: the stem
// (i = 0), each stage's last block (i = 1…stages) and the head conv (i = arch.HeadIndex), for
// model summaries and debugging. The graph is Backbone's.
func BackboneStages(ctx *context.Context, arch Arch, images *Node) (out *Node, stages []*Node) {
	x := convBNAct(ctx.In("0"), images, arch.StemChannels, 3, 2, 1, true)
	stages = append(stages, x)
	for i, b := range arch.Blocks {
		x = mbconv(ctx.In(fmt.Sprint(b.Stage+1)).In(fmt.Sprint(b.Index)), b, x)
		if i == len(arch.Blocks)-1 || arch.Blocks[i+1].Stage != b.Stage {
			stages = append(stages, x)
		}
	}
	x = convBNAct(ctx.In(fmt.Sprint(arch.HeadIndex)), x, arch.HeadChannels, 1, 1, 1, true)
	return x, append(stages, x)
}

// mbconv is torchvision's MBConv; ctx is features.{stage}.{index}.
func mbconv(ctx *context.Context, b Block, x *Node) *Node {
	in := x
	bctx := ctx.In("block")
	i := 0
	next := func() *context.Context { c := bctx.In(fmt.Sprint(i)); i++; return c }
	if b.Expand != 1 {
		x = convBNAct(next(), x, b.Expanded, 1, 1, 1, true)
	}
	x = convBNAct(next(), x, b.Expanded, b.Kernel, b.Stride, b.Expanded, true)
	x = squeezeExcite(next(), x, b.Squeeze)
	x = convBNAct(next(), x, b.Out, 1, 1, 1, false)
	if b.Residual() {
		x = graph.Add(stochasticDepth(ctx, x, b.DropPath), in)
	}
	return x
}

// squeezeExcite is torchvision's SqueezeExcitation(C, squeeze, activation=SiLU): fc1/fc2 are
// 1×1 convs with bias (weights [S, C, 1, 1] and [C, S, 1, 1]).
func squeezeExcite(ctx *context.Context, x *Node, squeeze int) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	bsz, c := d[0], d[1]
	pooled := graph.ReduceMean(x, 2, 3) // [B, C]
	fc := func(name string, v *Node, out int) *Node {
		fctx := ctx.In(name)
		in := v.Shape().Dimensions[1]
		w := param(fctx, g, "weight", kaimingNormalFanOut(fctx), out, in, 1, 1)
		bias := param(fctx, g, "bias", zerosInit, out)
		y := graph.DotGeneral(v, []int{1}, nil, graph.Reshape(w, out, in), []int{1}, nil)
		return addLast(y, bias)
	}
	s := silu(fc("fc1", pooled, squeeze))
	s = graph.Logistic(fc("fc2", s, c))
	return graph.Mul(x, graph.Reshape(s, bsz, c, 1, 1))
}

// project is Conv2d(C, dim, 1, bias=True) followed by the row-major flattening of the grid:
// it returns tokens [B, H'·W', dim] (token t = row·W' + col). The weight is [dim, C, 1, 1] and
// both it and the bias use PyTorch's default Conv2d init U(±1/√C).
func project(ctx *context.Context, feats *Node, dim int) *Node {
	g := feats.Graph()
	d := feats.Shape().Dimensions
	bsz, c, t := d[0], d[1], d[2]*d[3]
	bound := 1 / math.Sqrt(float64(c))
	w := param(ctx, g, "weight", uniformInit(ctx, bound), dim, c, 1, 1)
	bias := param(ctx, g, "bias", uniformInit(ctx, bound), dim)
	xs := graph.Reshape(feats, bsz, c, t)
	y := graph.DotGeneral(xs, []int{1}, nil, graph.Reshape(w, dim, c), []int{1}, nil) // [B, T, dim]
	return addLast(y, bias)
}

// attention is additive attention: score_t = v·tanh(W h_t + b), α = softmax_t(score),
// context = Σ_t α_t h_t. W is attention.W (weight [dim, 2H], bias), v is attention.v
// (weight [1, dim], no bias). It returns context [B, 2H] and α [B, T].
func attention(ctx *context.Context, seq *Node, dim int) (*Node, *Node) {
	d := seq.Shape().Dimensions
	u := graph.Tanh(linear(ctx.In("W"), seq, dim, true)) // [B, T, dim]
	score := linear(ctx.In("v"), u, 1, false)            // [B, T, 1]
	score = graph.Reshape(score, d[0], d[1])
	alpha := graph.Softmax(score, -1)
	ctxVec := graph.DotGeneral(alpha, []int{1}, []int{0}, seq, []int{1}, []int{0}) // [B, 2H]
	return ctxVec, alpha
}
