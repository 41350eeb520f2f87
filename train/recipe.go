package train

// The training recipe of timm and Lightning on the trainer's side: label smoothing and
// mixup/CutMix (soft targets, softloss.go, mix.go), gradient accumulation, EMA of the weights
// (ema.go) and bf16. With none of them set, Run builds exactly the step graph it always did
// (stepGraph); with label smoothing, mixing or accumulation it builds recipeGraph.
//
// Gradient accumulation (AccumSteps = K) splits each batch of Batch examples into K
// micro-batches of Batch/K run one after the other (the memory of one micro-batch), adds their
// gradients and makes one optimizer update. Each micro-batch's loss is its part of the whole
// batch's loss (recipeLoss: per-task sums divided by the whole batch's label counts), so the
// accumulated gradient is the gradient of the batch's loss — exactly what the update of the
// unsplit batch uses — for any model whose output for an example does not depend on the other
// examples of its batch. Batch normalization in training mode is not such a model: each
// micro-batch is normalized with its own statistics (and the running statistics are updated K
// times per step), as in PyTorch/Lightning's accumulate_grad_batches. Dropout draws other masks
// for a split batch. TestAccumulationEqualsFullBatch checks the equality on a model without
// either.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/models/spec"
)

// Precisions (Options.Precision, train.precision).
const (
	PrecisionFloat32 = "float32"
	PrecisionBF16    = "bf16"
)

// ErrBF16NeedsXLA is the refusal of bf16 on the pure-Go backend.
var ErrBF16NeedsXLA = errors.New("train.precision: bf16 needs the XLA backend (xla:cuda); the go backend runs float32")

// validateRecipe checks the recipe's fields of the data and train sections.
func (fc *FileConfig) validateRecipe() []error {
	var errs []error
	d, tc := fc.Data, fc.Train
	switch d.Augment {
	case "", AugmentTrivial, AugmentRand:
	default:
		errs = append(errs, fmt.Errorf("field data.augment: %q: want trivial, randaugment or empty", d.Augment))
	}
	for name, v := range map[string]float64{"data.random_erasing": d.RandomErasing, "data.mix_prob": d.MixProb,
		"data.mix_switch_prob": d.MixSwitchProb, "train.label_smoothing": tc.LabelSmoothing} {
		if !(v >= 0 && v <= 1) {
			errs = append(errs, fmt.Errorf("field %s: must be in [0,1], got %g", name, v))
		}
	}
	for name, v := range map[string]float64{"data.mixup": d.Mixup, "data.cutmix": d.CutMix} {
		if !(v >= 0 && v <= 100) {
			errs = append(errs, fmt.Errorf("field %s: a Beta(α, α) α must be in [0, 100] (0: off), got %g", name, v))
		}
	}
	if !(tc.EMADecay >= 0 && tc.EMADecay < 1) {
		errs = append(errs, fmt.Errorf("field train.ema_decay: must be in [0,1) (0: off), got %g", tc.EMADecay))
	}
	if tc.AccumSteps < 0 {
		errs = append(errs, fmt.Errorf("field train.accum_steps: must be ≥ 0, got %d", tc.AccumSteps))
	} else if tc.AccumSteps > 1 {
		for i, p := range fc.Phases {
			if p.Batch%tc.AccumSteps != 0 {
				errs = append(errs, fmt.Errorf("field train.accum_steps: %d does not divide phases[%d].batch %d", tc.AccumSteps, i, p.Batch))
			}
		}
	}
	switch tc.Precision {
	case "", PrecisionFloat32, PrecisionBF16:
	default:
		errs = append(errs, fmt.Errorf("field train.precision: %q: want float32 or bf16", tc.Precision))
	}
	return errs
}

// checkPrecision refuses bf16 unless the backend config (as graph.NewBackend resolves it) is
// XLA's.
func checkPrecision(precision, backend string) error {
	if precision != PrecisionBF16 {
		return nil
	}
	if name := backendName(backend); name == "xla" || name == "stablehlo" || name == "shlo" || name == "hlo" {
		return nil
	}
	return ErrBF16NeedsXLA
}

// soft reports whether the step needs recipeGraph (soft targets or micro-batches).
func (o *Options) soft() bool { return o.LabelSmoothing > 0 || o.Mix.On() || o.AccumSteps > 1 }

func (o *Options) accum() int { return max(o.AccumSteps, 1) }

func (o *Options) validateRecipe() []error {
	var errs []error
	if !(o.LabelSmoothing >= 0 && o.LabelSmoothing <= 1) {
		errs = append(errs, fmt.Errorf("option LabelSmoothing: must be in [0,1], got %g", o.LabelSmoothing))
	}
	if !(o.Mix.Mixup >= 0 && o.Mix.CutMix >= 0 && o.Mix.Prob >= 0 && o.Mix.Prob <= 1 && o.Mix.SwitchProb >= 0 && o.Mix.SwitchProb <= 1) {
		errs = append(errs, fmt.Errorf("option Mix: α ≥ 0 and probabilities in [0,1], got %+v", o.Mix))
	}
	if o.AccumSteps < 0 || (o.AccumSteps > 1 && o.Batch%o.AccumSteps != 0) {
		errs = append(errs, fmt.Errorf("option AccumSteps: must be ≥ 0 and divide Batch %d, got %d", o.Batch, o.AccumSteps))
	}
	if !(o.EMADecay >= 0 && o.EMADecay < 1) {
		errs = append(errs, fmt.Errorf("option EMADecay: must be in [0,1), got %g", o.EMADecay))
	}
	if o.Precision != "" && o.Precision != PrecisionFloat32 && o.Precision != PrecisionBF16 {
		errs = append(errs, fmt.Errorf("option Precision: %q: want float32 or bf16", o.Precision))
	}
	if err := checkPrecision(o.Precision, o.Backend); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// recipeInputs is the number of fixed inputs of recipeGraph: images, labels, partner labels, λ,
// the batch's label counts and the learning rate; the accumulated gradients follow.
const recipeInputs = 6

// recipeGraph returns the step graph of one micro-batch: model, soft-target multi-task loss
// (its part of the batch's, recipeLoss), gradients plus those accumulated so far (inputs after
// the fixed ones). Unless final, it returns the loss outputs and the accumulated gradients;
// the final micro-batch's graph (clip, AdamW update, EMA) returns the loss outputs only.
func (t *trainer) recipeGraph(final bool) func(ctx *gomlxcontext.Context, in []*graph.Node) []*graph.Node {
	return func(ctx *gomlxcontext.Context, in []*graph.Node) []*graph.Node {
		images, labels, partner, lam, counts, lr := in[0], in[1], in[2], in[3], in[4], in[5]
		acc := in[recipeInputs:]
		g := images.Graph()
		ctx.SetTraining(g, true)
		logits := t.forward(ctx, images)
		sources, olds := t.emaSources(ctx, g)
		total, per := recipeLoss(ctx, logits, labels, partner, lam, counts, 1/float64(t.o.accum()), t.o.LabelSmoothing, DefaultGamma)
		applyFreeze(ctx, t.o.Freeze)
		out := []*graph.Node{total}
		for _, task := range spec.Tasks {
			out = append(out, per[task])
		}
		for _, task := range spec.Tasks {
			out = append(out, ctx.In(UncertaintyScope).GetVariable("log_var_"+task).ValueGraph(g))
		}
		grads := ctx.BuildTrainableVariablesGradientsGraph(total)
		if len(acc) > 0 {
			if len(acc) != len(grads) {
				panic(fmt.Sprintf("gradient accumulation: %d accumulated gradients for %d trainable variables", len(acc), len(grads)))
			}
			for i := range grads {
				grads[i] = graph.Add(grads[i], acc[i])
			}
		}
		if !final {
			return append(out, grads...)
		}
		optimizers.LearningRateVarWithValue(ctx, dtypes.Float32, t.o.LR).SetValueGraph(lr)
		opt := optimizers.Adam().LearningRate(t.o.LR).Betas(t.o.Beta1, t.o.Beta2).WeightDecay(t.o.WeightDecay).Done()
		if t.o.ClipNorm > 0 {
			grads = clipTrainableGradients(ctx, g, grads, t.o.ClipNorm)
		}
		opt.(interface {
			UpdateGraphWithGradients(*gomlxcontext.Context, []*graph.Node, dtypes.DType)
		}).UpdateGraphWithGradients(ctx, grads, total.DType())
		t.emaUpdate(ctx, g, sources, olds)
		return out
	}
}

// forward runs the model (in bf16 when Precision says so: see precision.go).
func (t *trainer) forward(ctx *gomlxcontext.Context, images *graph.Node) map[string]*graph.Node {
	if t.o.Precision == PrecisionBF16 {
		return forwardBF16(ctx, t.cfg, t.model, images)
	}
	return t.model(ctx, t.cfg, images)
}

// emaSources returns, when EMA is on, the variables it averages and their values before the
// update.
func (t *trainer) emaSources(ctx *gomlxcontext.Context, g *graph.Graph) ([]*gomlxcontext.Variable, []*graph.Node) {
	if t.o.EMADecay == 0 {
		return nil, nil
	}
	src := emaSources(ctx, g)
	olds := make([]*graph.Node, len(src))
	for i, v := range src {
		olds[i] = v.ValueGraph(g)
	}
	return src, olds
}

func (t *trainer) emaUpdate(ctx *gomlxcontext.Context, g *graph.Graph, sources []*gomlxcontext.Variable, olds []*graph.Node) {
	if t.o.EMADecay > 0 {
		emaUpdateGraph(ctx, g, sources, olds, t.o.EMADecay)
	}
}

// recipeBuffers are the host buffers of the recipe step (partner labels, λ).
type recipeBuffers struct {
	partner []int32
	lam     []float32
}

// runRecipeStep mixes the batch at stream position pos (Mix), then runs its K micro-batches
// and the update; the metrics are the whole batch's (the micro-batches' parts added up).
func (t *trainer) runRecipeStep(images []float32, labels []int32, lr float64, pos int) (m StepMetrics, err error) {
	size, b, k := t.cfg.ImageSize, t.o.Batch, t.o.accum()
	nt := len(spec.Tasks)
	if t.rb == nil {
		t.rb = &recipeBuffers{partner: make([]int32, len(labels)), lam: make([]float32, b)}
	}
	partner, lam := t.rb.partner, t.rb.lam
	t.o.Mix.mixBatch(t.o.Seed, pos, images, labels, partner, lam, size)
	counts := unmaskedCounts(labels, partner)
	mb := b / k
	per := 3 * size * size
	m = StepMetrics{Kind: "train", LR: lr, TaskLoss: map[string]float64{}, LogVar: map[string]float64{}}
	var acc []*tensors.Tensor
	defer func() { finalizeAll(acc) }()
	for j := range k {
		final := j == k-1
		args := []any{
			tensors.FromFlatDataAndDimensions(images[j*mb*per:(j+1)*mb*per], mb, 3, size, size),
			tensors.FromFlatDataAndDimensions(labels[j*mb*nt:(j+1)*mb*nt], mb, nt),
			tensors.FromFlatDataAndDimensions(partner[j*mb*nt:(j+1)*mb*nt], mb, nt),
			tensors.FromFlatDataAndDimensions(lam[j*mb:(j+1)*mb], mb),
			tensors.FromFlatDataAndDimensions(counts, nt),
			tensors.FromScalar(float32(lr)),
		}
		fixed := args
		for _, a := range acc {
			args = append(args, a)
		}
		exec := t.micro
		if final {
			exec = t.step
		}
		out, err := safeExec(exec, args...)
		for _, a := range fixed {
			_ = a.(*tensors.Tensor).FinalizeAll()
		}
		if err != nil {
			return m, err
		}
		if len(out) < 1+2*nt {
			finalizeAll(out)
			return m, fmt.Errorf("training step returned %d outputs, want at least %d", len(out), 1+2*nt)
		}
		m.Loss += scalar(out[0])
		for i, task := range spec.Tasks {
			m.TaskLoss[task] += scalar(out[1+i])
			if j == 0 {
				m.LogVar[task] = scalar(out[1+nt+i])
			}
		}
		finalizeAll(out[:1+2*nt])
		finalizeAll(acc)
		acc = out[1+2*nt:]
	}
	return m, nil
}

// newRecipeExecs builds the executors of the recipe step: t.step (final micro-batch) and, with
// accumulation, t.micro.
func (t *trainer) newRecipeExecs() error {
	// Both graphs read (and the first one built creates) the same model variables.
	ctx := t.mctx.Checked(false)
	var err error
	if t.step, err = gomlxcontext.NewExec(t.backend, ctx, t.recipeGraph(true)); err != nil {
		return err
	}
	if t.o.accum() > 1 {
		if t.micro, err = gomlxcontext.NewExec(t.backend, ctx, t.recipeGraph(false)); err != nil {
			return err
		}
	}
	return nil
}

// backendName is the name part of a backend config ("" → $GOMLX_BACKEND → go).
func backendName(config string) string {
	name, _, _ := strings.Cut(engine.BackendConfig(config), ":")
	return name
}
