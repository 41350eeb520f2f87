package models

import (
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Part names returned by ParamCounts.
const (
	PartBackbone  = "backbone"
	PartProj      = "proj"
	PartEncoder   = "encoder"
	PartAttention = "attention"
	PartHeads     = "heads"
	PartTotal     = "total"
)

// TorchName returns the PyTorch state-dict name of the variable name in scope, e.g.
// ("/backbone/features/0/0", "weight") → "backbone.features.0.0.weight".
func TorchName(scope, name string) string {
	s := strings.Trim(scope, context.ScopeSeparator)
	if s == "" {
		return name
	}
	return strings.ReplaceAll(s, context.ScopeSeparator, ".") + "." + name
}

// ScopeAndName is the inverse of TorchName: "heads.style.0.weight" → ("/heads/style/0", "weight").
func ScopeAndName(torchName string) (scope, name string) {
	i := strings.LastIndex(torchName, ".")
	if i < 0 {
		return context.RootScope, torchName
	}
	return context.RootScope + strings.ReplaceAll(torchName[:i], ".", context.ScopeSeparator), torchName[i+1:]
}

// isBufferName reports whether a variable name is a BatchNorm buffer (not a PyTorch parameter).
func isBufferName(name string) bool {
	return name == "running_mean" || name == "running_var" || name == "num_batches_tracked"
}

// partOf returns the ParamCounts part of a variable scope, or "" for variables outside the model
// (optimizer state, global step, random-number state).
func partOf(scope string) string {
	s := strings.Trim(scope, context.ScopeSeparator) + context.ScopeSeparator
	switch {
	case strings.HasPrefix(s, ScopeBackbone+"/"+ScopeFeatures+"/"):
		return PartBackbone
	case strings.HasPrefix(s, ScopeBackbone+"/"+ScopeProj+"/"):
		return PartProj
	case strings.HasPrefix(s, ScopeEncoder+"/"):
		return PartEncoder
	case strings.HasPrefix(s, ScopeAttention+"/"):
		return PartAttention
	case strings.HasPrefix(s, ScopeHeads+"/"):
		return PartHeads
	}
	return ""
}

// ParamCounts returns per-part parameter counts (backbone, proj, encoder, attention, heads, and
// their total) of the model variables in ctx, counted like PyTorch's sum of p.numel() over
// parameters: BatchNorm running statistics and variables outside the model (optimizer state,
// global step, random-number state) are not counted. It needs only the variables' shapes, so a
// context after Build (even without initialized values) or after LoadCheckpoint works.
func ParamCounts(ctx *context.Context) map[string]int {
	counts := map[string]int{PartBackbone: 0, PartProj: 0, PartEncoder: 0, PartAttention: 0, PartHeads: 0, PartTotal: 0}
	for v := range ctx.IterVariables() {
		part := partOf(v.Scope())
		if part == "" || isBufferName(v.Name()) {
			continue
		}
		n := v.Shape().Size()
		counts[part] += n
		counts[PartTotal] += n
	}
	return counts
}
