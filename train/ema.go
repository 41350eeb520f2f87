package train

// EMA of the weights (Options.EMADecay, train.ema_decay; timm's ModelEmaV2): after every
// optimizer update, ema ← d·ema + (1−d)·w for every variable of the model (weights and
// batch-norm statistics), the first update starting from the weights before it. The averages
// live in the training context under EMAScope (so checkpoints carry them and a resumed run
// continues them exactly); they are evaluated beside the weights at each evaluation
// (EvalMetrics.EMAAccuracy) and saved with every checkpoint as OutDir/ema, a plain model
// checkpoint (config and model variables only) that evaluate, export and predict read like any
// other.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/artnet/artnet/models"
)

// EMA files and scope.
const (
	EMADir       = "ema"  // in OutDir: the EMA weights at the newest checkpoint
	EMAScope     = "/ema" // the averages of variable <scope>/<name> are <EMAScope><scope>/<name>
	emaCountName = "updates"
)

// emaSources returns the variables of ctx that the model function used in g (weights and
// batch-norm statistics; not the random state, which is at the root scope): what EMA averages.
func emaSources(ctx *gomlxcontext.Context, g *graph.Graph) []*gomlxcontext.Variable {
	var out []*gomlxcontext.Variable
	for v := range ctx.IterVariables() {
		if v.Scope() == gomlxcontext.RootScope || underScope(v.Scope(), EMAScope) || !v.InUseByGraph(g) || !v.Shape().DType.IsFloat() {
			continue
		}
		out = append(out, v)
	}
	return out
}

// emaUpdateGraph adds the EMA update to the step graph g: olds are the sources' values before
// the optimizer update (the graph's parameters), the sources' current value graphs the values
// after it.
func emaUpdateGraph(ctx *gomlxcontext.Context, g *graph.Graph, sources []*gomlxcontext.Variable, olds []*graph.Node, decay float64) {
	ectx := ctx.Checked(false).InAbsPath(EMAScope).WithInitializer(initializers.Zero)
	countVar := ectx.VariableWithShape(emaCountName, shapes.Make(dtypes.Float32)).SetTrainable(false)
	count := countVar.ValueGraph(g)
	first := graph.Equal(count, graph.ZerosLike(count))
	for i, v := range sources {
		ev := ctx.Checked(false).InAbsPath(EMAScope+v.Scope()).WithInitializer(initializers.Zero).
			VariableWithShape(v.Name(), v.Shape()).SetTrainable(false)
		prev := graph.Where(first, olds[i], ev.ValueGraph(g))
		now := v.ValueGraph(g)
		ev.SetValueGraph(graph.Add(graph.MulScalar(prev, decay), graph.MulScalar(now, 1-decay)))
	}
	countVar.SetValueGraph(graph.OnesLike(count))
}

// emaContext returns a context holding, under the model's own scopes, the EMA values of ctx
// (nil when ctx has none): a model context for evaluation or a checkpoint.
func emaContext(ctx *gomlxcontext.Context) (*gomlxcontext.Context, error) {
	out := gomlxcontext.New()
	n := 0
	var err error
	for v := range ctx.IterVariables() {
		if !underScope(v.Scope(), EMAScope) || v.Scope() == EMAScope {
			continue
		}
		val, verr := v.Value()
		if verr != nil {
			return nil, fmt.Errorf("EMA variable %s: %w", v.ScopeAndName(), verr)
		}
		scope := strings.TrimPrefix(v.Scope(), EMAScope)
		c, cerr := val.Clone()
		if cerr != nil {
			return nil, fmt.Errorf("EMA variable %s: %w", v.ScopeAndName(), cerr)
		}
		if e := catchPanic(func() { out.InAbsPath(scope).VariableWithValue(v.Name(), c) }); e != nil {
			err = fmt.Errorf("EMA variable %s: %w", v.ScopeAndName(), e)
		}
		n++
	}
	if err != nil || n == 0 {
		return nil, err
	}
	return out, nil
}

// saveEMA writes OutDir/ema from the EMA variables of the training context.
func (t *trainer) saveEMA(step int) error {
	ectx, err := emaContext(t.mctx)
	if err != nil || ectx == nil {
		return err
	}
	if err := models.SaveCheckpoint(ectx, t.cfg, filepath.Join(t.o.OutDir, EMADir)); err != nil {
		return fmt.Errorf("train: EMA checkpoint at step %d: %w", step, err)
	}
	return nil
}

// evaluateEMA evaluates the EMA weights on ds (nil when there are none yet, before the first
// update).
func (t *trainer) evaluateEMA(ctx context.Context, ds Dataset) (map[string]float64, error) {
	src, err := emaContext(t.mctx)
	if err != nil || src == nil {
		return nil, err
	}
	if t.emaEval == nil {
		t.emaEval = newEvaluator(t.backend, src, t.cfg, t.model, t.o.Batch)
	} else {
		for v := range src.IterVariables() {
			dst := t.emaEval.mctx.GetVariableByScopeAndName(v.Scope(), v.Name())
			if dst == nil {
				return nil, fmt.Errorf("EMA variable %s appeared after the first evaluation", v.ScopeAndName())
			}
			val, _ := v.Value()
			if err := dst.SetValue(val); err != nil {
				return nil, err
			}
		}
	}
	return t.emaEval.run(ctx, ds)
}
