package models

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
)

// ModuleSummary is one row of a model summary.
type ModuleSummary struct {
	Module string // PyTorch module path, e.g. "backbone.features.3"
	What   string // e.g. "stage 3: 2× MBConv6 k5 s2"
	Params int    // parameters (PyTorch's numel of its parameters; BatchNorm statistics not counted)
	Output []int  // output shape for one image
}

// Summary describes the DeepArtNet of a configuration.
type Summary struct {
	Config  spec.Config
	Modules []ModuleSummary
	Counts  map[string]int // ParamCounts
}

// Summarize builds (but never runs or initializes) the model of cfg for one image of
// cfg.ImageSize and returns its modules with parameter counts and output shapes.
func Summarize(cfg spec.Config) (sum *Summary, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model summary: %s", errtext.OneLine(err))
	}
	arch, err := Architecture(cfg)
	if err != nil {
		return nil, fmt.Errorf("model summary: %w", err)
	}
	backend, err := simplego.New("")
	if err != nil {
		return nil, err
	}
	defer backend.Finalize()
	ctx := context.New()
	var out Outputs
	var stages []*Node
	if err := catch(func() {
		g := graph.NewGraph(backend, "summary")
		defer g.Finalize()
		x := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 1, 3, cfg.ImageSize, cfg.ImageSize))
		out = Build(ctx, cfg, x)
		_, stages = BackboneStages(ctx.Reuse().In(ScopeBackbone).In(ScopeFeatures), arch, x)
	}); err != nil {
		return nil, fmt.Errorf("model summary: %w", err)
	}
	params := func(module string) int {
		prefix := "/" + strings.ReplaceAll(module, ".", "/") + "/"
		n := 0
		for v := range ctx.IterVariables() {
			if strings.HasPrefix(v.Scope()+"/", prefix) && !isBufferName(v.Name()) {
				n += v.Shape().Size()
			}
		}
		return n
	}
	dims := func(n *Node) []int { return append([]int(nil), n.Shape().Dimensions...) }
	sum = &Summary{Config: cfg, Counts: ParamCounts(ctx)}
	add := func(module, what string, output []int) {
		sum.Modules = append(sum.Modules, ModuleSummary{Module: module, What: what, Params: params(module), Output: output})
	}
	feat := ScopeBackbone + "." + ScopeFeatures + "."
	add(feat+"0", "stem: conv 3×3 s2, BN, SiLU", dims(stages[0]))
	for s := 0; s < cfg.NumStages(); s++ {
		var blocks []Block
		for _, b := range arch.Blocks {
			if b.Stage == s {
				blocks = append(blocks, b)
			}
		}
		b := blocks[0]
		add(fmt.Sprintf("%s%d", feat, s+1), fmt.Sprintf("stage %d: %d× MBConv%d k%d s%d", s+1, len(blocks), b.Expand, b.Kernel, b.Stride), dims(stages[s+1]))
	}
	add(fmt.Sprintf("%s%d", feat, arch.HeadIndex), "head: conv 1×1, BN, SiLU", dims(stages[len(stages)-1]))
	t := out.Attention.Shape().Dimensions[1]
	add(ScopeBackbone+"."+ScopeProj, "projection conv 1×1 → tokens (row-major grid)", []int{1, t, cfg.ProjDim})
	add(ScopeEncoder, fmt.Sprintf("BiLSTM, %d layers", cfg.LSTMLayers), []int{1, t, 2 * cfg.LSTMHidden})
	add(ScopeAttention, "additive attention (α over tokens)", dims(out.Attention))
	for _, task := range spec.Tasks {
		add(ScopeHeads+"."+task, "head → logits", dims(out.Logits[task]))
	}
	return sum, nil
}
