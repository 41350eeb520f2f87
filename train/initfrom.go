package train

import (
	"fmt"
	"os"
	"strings"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
)

// modelScopes are the scopes of the model's own variables (what InitFrom copies and Freeze may
// name): everything but the optimizer state, global step and random state.
var modelScopes = []string{"/" + models.ScopeBackbone, "/" + models.ScopeEncoder, "/" + models.ScopeAttention,
	"/" + models.ScopeHeads, "/" + UncertaintyScope}

func underScope(scope, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return scope == prefix || strings.HasPrefix(scope, prefix+"/")
}

func isModelVariable(scope string) bool {
	for _, p := range modelScopes {
		if underScope(scope, p) {
			return true
		}
	}
	return false
}

// isBuffer reports the model variables that are never trained (batch-norm statistics).
func isBuffer(name string) bool { return name == "running_mean" || name == "running_var" }

// applyFreeze sets the trainability of every model variable of ctx: not trainable when it is a
// buffer or under one of the frozen scope prefixes, trainable otherwise. It runs after the
// graph's variables exist, so that a previous phase's (or a checkpoint's) flags never leak.
func applyFreeze(ctx *gomlxcontext.Context, freeze []string) {
	for v := range ctx.IterVariables() {
		if !isModelVariable(v.Scope()) {
			continue
		}
		trainable := !isBuffer(v.Name())
		for _, p := range freeze {
			if underScope(v.Scope(), p) {
				trainable = false
			}
		}
		v.SetTrainable(trainable)
	}
}

// initFrom fills the fresh context mctx with the model variables of o.InitFrom: a checkpoint
// directory, or a PyTorch weights file (then the import report is returned).
func initFrom(mctx *gomlxcontext.Context, cfg spec.Config, o Options) (*models.ImportReport, error) {
	fi, err := os.Stat(o.InitFrom)
	if err != nil {
		return nil, err // names the path
	}
	if !fi.IsDir() {
		src, rep, err := models.ImportWeights(o.InitFrom, cfg, models.ImportOptions{AllowPartial: o.AllowPartial, Seed: o.Seed})
		if err != nil {
			return nil, err
		}
		return rep, copyModelVariables(mctx, src, "weights "+o.InitFrom)
	}
	src, ckCfg, err := models.LoadCheckpoint(o.InitFrom)
	if err != nil {
		return nil, err
	}
	if string(ckCfg.JSON()) != string(cfg.JSON()) {
		return nil, fmt.Errorf("checkpoint %s: its model config differs from the one being trained", o.InitFrom)
	}
	return nil, copyModelVariables(mctx, src, "checkpoint "+o.InitFrom)
}

// copyModelVariables copies the model variables of src (not its optimizer state, global step or
// random state) into mctx, trainable except for the batch-norm statistics.
func copyModelVariables(mctx, src *gomlxcontext.Context, what string) error {
	n := 0
	for v := range src.IterVariables() {
		if !isModelVariable(v.Scope()) {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return fmt.Errorf("%s: variable %s/%s: %w", what, v.Scope(), v.Name(), err)
		}
		cp, err := val.Clone()
		if err != nil {
			return fmt.Errorf("%s: variable %s/%s: %w", what, v.Scope(), v.Name(), err)
		}
		nv := mctx.InAbsPath(v.Scope()).VariableWithValue(v.Name(), cp)
		nv.SetTrainable(!isBuffer(v.Name()))
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no model variables", what)
	}
	return nil
}
