package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/internal/tfevents"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// ModelFn builds the per-task logits ([B, N_task], keyed by spec.Tasks) for images [B,3,S,S].
// Training mode is GoMLX's ctx.IsTraining(g). The default is models.Build.
type ModelFn func(ctx *gomlxcontext.Context, cfg spec.Config, images *graph.Node) map[string]*graph.Node

// DeepArtNet is the ModelFn of models.Build.
func DeepArtNet(ctx *gomlxcontext.Context, cfg spec.Config, images *graph.Node) map[string]*graph.Node {
	return models.Build(ctx, cfg, images).Logits
}

// Options configure Run.
type Options struct {
	// Config is the model configuration. On Resume it may be left zero (then the checkpoint's is
	// used); otherwise it must equal the checkpoint's.
	Config spec.Config
	// OutDir receives ckpt-<step>/ checkpoints, the "latest" pointer and metrics.jsonl.
	OutDir string
	// Steps is the global step to train up to (a resumed run continues from its step to Steps).
	Steps int
	// Batch is the batch size.
	Batch int
	// LR is the peak learning rate, WeightDecay AdamW's decoupled weight decay (scaled by the
	// learning rate, applied to every trainable variable).
	LR, WeightDecay float64
	// Beta1, Beta2 are Adam's moment decay rates (0 → 0.9 and 0.999).
	Beta1, Beta2 float64
	// WarmupSteps ramps the learning rate linearly from LR/WarmupSteps to LR.
	WarmupSteps int
	// ConstantLR disables the cosine decay (from LR after warm-up to MinLR at Steps).
	ConstantLR bool
	// MinLR is the cosine schedule's final learning rate (default 0).
	MinLR float64
	// CheckpointEvery saves a checkpoint every so many steps (0: only at the end).
	// EvalEvery evaluates the validation set every so many steps (0: only at the end).
	CheckpointEvery, EvalEvery int
	// KeepCheckpoints is how many of the newest checkpoints are kept (0 → 3).
	KeepCheckpoints int
	// LogEvery logs a progress line every so many steps (0 → 10); metrics.jsonl gets every step.
	LogEvery int
	// Seed fixes weight initialisation, data order and dropout.
	Seed int64
	// Resume continues from the newest checkpoint in OutDir that loads (a fresh start when
	// OutDir holds none). Without Resume, an OutDir that already holds checkpoints is an error.
	Resume bool
	// Backend is the GoMLX backend config for graph.NewBackend ("" → $GOMLX_BACKEND or "go").
	Backend string
	// Model is the model function (nil → DeepArtNet).
	Model ModelFn
	// OnStep, when set, is called after every step (before any checkpoint or evaluation of that
	// step), in Run's goroutine.
	OnStep func(StepMetrics)

	// Freeze lists variable scope prefixes (e.g. "/encoder", "/backbone/features/0") whose
	// variables are not trained: they are marked non-trainable after the training graph is built
	// (so no gradient, no Adam moments, no weight decay). Batch-norm statistics of frozen layers
	// are still updated in training mode.
	Freeze []string
	// InitFrom, on a fresh start, takes the model variables instead of initialising them: from a
	// checkpoint directory (weights, batch-norm statistics, uncertainty weights; its model config
	// must equal Config), or from a PyTorch weights file (safetensors or .pth/.pt: a whole
	// DeepArtNet or an ImageNet-pretrained backbone under spec, torchvision or timm names,
	// imported by models.ImportWeights with the same mapping and errors as `artnet import`; the
	// parts the file does not provide are initialised, seeded by Seed). The optimizer state and
	// global step start fresh. Ignored when resuming.
	InitFrom string
	// AllowPartial, for an InitFrom weights file, accepts missing or extra tensors (see
	// models.ImportOptions.AllowPartial); Result.Imported lists them.
	AllowPartial bool
	// ClipNorm, when > 0, scales the gradients so that their global L2 norm is at most ClipNorm.
	ClipNorm float64
	// Sampler, when set, gives each epoch's example order (e.g. BalancedSampler); nil is a seeded
	// permutation of the training set per epoch.
	Sampler Sampler
	// KeepBest saves the checkpoint with the best validation score (mean top-1 over the present
	// tasks) of this run into OutDir/best (and its score into OutDir/best.json).
	KeepBest bool
	// OnEval, when set, is called after every evaluation, in Run's goroutine.
	OnEval func(EvalMetrics)
	// Record, when set (JSON), is saved in every checkpoint of this Run as its options.json,
	// covered by the checkpoint's checksums (models.SaveCheckpointWithOptions): RunPhases records
	// the phase's PhaseOptions there, and models.ReadCheckpointOptions reads them back from any
	// checkpoint without loading it.
	Record []byte
	// Workers load training examples (decode, augment) in parallel (0 → GOMAXPROCS).
	Workers int
	// Prefetch is how many loaded batches may wait ahead of the step (0 → 2).
	Prefetch int
	// StreamStart is the position in the training stream of this Run's first example: step s
	// reads positions StreamStart + s·Batch + b, whose epoch (position / Len), sampler order and
	// augmentation follow. RunPhases gives each phase the position where the phases before it
	// end, so a phase continues the data stream instead of replaying the first phase's epochs
	// (the same examples in the same order with the same crops). It also seeds the random state
	// of a fresh start (dropout), mixed with Seed, so phases do not repeat each other's masks.
	StreamStart int

	// The recipe (recipe.go; each off when zero): LabelSmoothing ε of every task's targets;
	// Mix, mixup/CutMix of each batch (mix.go); AccumSteps micro-batches of Batch/AccumSteps
	// examples per update (their gradients added: the batch's gradient, see recipe.go);
	// EMADecay, an exponential moving average of the weights evaluated beside them and saved
	// as OutDir/ema (ema.go); Precision "bf16" runs the model in bfloat16 (XLA backend only).
	LabelSmoothing float64
	Mix            Mix
	AccumSteps     int
	EMADecay       float64
	Precision      string
}

// Result is what Run ends with.
type Result struct {
	Step          int                // global step reached
	Loss          float64            // total (uncertainty-weighted) loss of the last step
	TaskLoss      map[string]float64 // focal loss per task of the last step
	ValAccuracy   map[string]float64 // validation accuracy per task at the end (nil without a val set)
	CheckpointDir string             // the newest checkpoint written or resumed from ("" if none)
	// Imported says what an InitFrom weights file provided (nil otherwise).
	Imported *models.ImportReport
}

// StepMetrics is one line of metrics.jsonl for a training step.
type StepMetrics struct {
	Kind         string             `json:"kind"` // "train"
	Step         int                `json:"step"` // global step after this update (1-based)
	Loss         float64            `json:"loss"`
	TaskLoss     map[string]float64 `json:"task_loss"`
	LogVar       map[string]float64 `json:"log_var"` // s_k = log σ_k² (before this update)
	LR           float64            `json:"lr"`
	Seconds      float64            `json:"seconds"`
	ImagesPerSec float64            `json:"images_per_sec"`
	// InputWaitSeconds is how long the step waited for its batch (the input pipeline was
	// slower than the model when it is a large part of Seconds).
	InputWaitSeconds float64 `json:"input_wait_seconds"`
}

// EvalMetrics is one line of metrics.jsonl for an evaluation.
type EvalMetrics struct {
	Kind     string             `json:"kind"` // "eval"
	Step     int                `json:"step"`
	Accuracy map[string]float64 `json:"accuracy"`
	Top5     map[string]float64 `json:"top5,omitempty"`
	// EMAAccuracy is the accuracy of the EMA weights (Options.EMADecay > 0).
	EMAAccuracy map[string]float64 `json:"ema_accuracy,omitempty"`
	Seconds     float64            `json:"seconds"`
}

// Files in OutDir.
const (
	MetricsFile   = "metrics.jsonl"
	LatestFile    = "latest" // holds the name of the newest checkpoint directory
	checkpointPfx = "ckpt-"
)

// CheckpointName is the directory name of the checkpoint at a global step.
func CheckpointName(step int) string { return fmt.Sprintf("%s%08d", checkpointPfx, step) }

func (o *Options) validate() error {
	var errs []error
	if o.OutDir == "" {
		errs = append(errs, errors.New("option OutDir: empty"))
	}
	if o.Steps <= 0 {
		errs = append(errs, fmt.Errorf("option Steps: must be > 0, got %d", o.Steps))
	}
	if o.Batch <= 0 {
		errs = append(errs, fmt.Errorf("option Batch: must be > 0, got %d", o.Batch))
	}
	if !(o.LR > 0) || math.IsInf(o.LR, 0) {
		errs = append(errs, fmt.Errorf("option LR: must be a positive number, got %g", o.LR))
	}
	if o.WeightDecay < 0 || math.IsNaN(o.WeightDecay) {
		errs = append(errs, fmt.Errorf("option WeightDecay: must be ≥ 0, got %g", o.WeightDecay))
	}
	if o.StreamStart < 0 {
		errs = append(errs, fmt.Errorf("option StreamStart: must be ≥ 0, got %d", o.StreamStart))
	}
	if o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1 {
		errs = append(errs, fmt.Errorf("option Beta1/Beta2: must be in [0,1), got %g, %g", o.Beta1, o.Beta2))
	}
	if o.MinLR < 0 || o.MinLR > o.LR {
		errs = append(errs, fmt.Errorf("option MinLR: must be in [0, LR], got %g", o.MinLR))
	}
	for name, v := range map[string]int{"WarmupSteps": o.WarmupSteps, "CheckpointEvery": o.CheckpointEvery,
		"EvalEvery": o.EvalEvery, "KeepCheckpoints": o.KeepCheckpoints, "LogEvery": o.LogEvery} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("option %s: must be ≥ 0, got %d", name, v))
		}
	}
	errs = append(errs, o.validateRecipe()...)
	return errors.Join(errs...)
}

// LearningRate is the schedule Run uses for the update of 0-based step index step: linear
// warm-up to o.LR over o.WarmupSteps, then (unless ConstantLR) a half cosine from LR down to
// MinLR at o.Steps. It depends only on step, so a resumed run continues the same schedule.
func (o *Options) LearningRate(step int) float64 {
	if step < o.WarmupSteps {
		return o.LR * float64(step+1) / float64(o.WarmupSteps)
	}
	if o.ConstantLR {
		return o.LR
	}
	span := max(o.Steps-o.WarmupSteps, 1)
	p := min(float64(step-o.WarmupSteps)/float64(span), 1)
	return o.MinLR + (o.LR-o.MinLR)*0.5*(1+math.Cos(math.Pi*p))
}

// Run trains the model on trainSet (evaluating per-task accuracy on valSet, which may be nil)
// until global step o.Steps, writing checkpoints and metrics into o.OutDir.
//
// Every batch is a function of (o.Seed, step) — each epoch is a seeded permutation of trainSet —
// and dropout draws from the random state saved in the checkpoint, so a run resumed from a
// checkpoint continues exactly as the uninterrupted run would have.
//
// When ctx is cancelled, Run saves a checkpoint of the steps done so far and returns the result
// with ctx's error. A NaN or ±Inf loss stops training with an error (and no checkpoint of that
// state). Whenever Run returns a non-nil Result with an error, the Result describes the last
// finite step and the newest checkpoint on disk.
//
// A resumed run must be given the same data sets (length and content) and Seed to continue the
// same batch sequence; Steps may be raised (the cosine schedule then stretches from that step on).
func Run(ctx context.Context, o Options, trainSet, valSet Dataset, log *slog.Logger) (res *Result, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if trainSet == nil || trainSet.Len() == 0 {
		return nil, errors.New("train: the training set is empty")
	}
	if o.Sampler != nil {
		if n := len(o.Sampler(o.Seed, 0)); n != trainSet.Len() {
			return nil, fmt.Errorf("train: option Sampler: returned %d indices, want the training set's %d", n, trainSet.Len())
		}
	}
	if o.KeepCheckpoints == 0 {
		o.KeepCheckpoints = 3
	}
	if o.LogEvery == 0 {
		o.LogEvery = 10
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	model := o.Model
	if model == nil {
		model = DeepArtNet
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: output folder: %w", err)
	}

	// Model context: fresh, or the newest checkpoint that loads.
	var mctx *gomlxcontext.Context
	cfg := o.Config
	startStep := 0
	resumedFrom := ""
	var imported *models.ImportReport
	existing, err := listCheckpoints(o.OutDir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if len(existing) > 0 && !o.Resume {
		return nil, fmt.Errorf("train: %s already holds checkpoints (newest %s): resume, or choose another output folder", o.OutDir, existing[0].name)
	}
	if o.Resume && len(existing) > 0 {
		var ckCfg spec.Config
		mctx, ckCfg, resumedFrom, err = loadNewest(o.OutDir, existing, log)
		if err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		if cfg.ImageSize == 0 && cfg.Variant == "" {
			cfg = ckCfg
		} else if string(cfg.JSON()) != string(ckCfg.JSON()) {
			return nil, fmt.Errorf("train: resume: the model config differs from checkpoint %s's", resumedFrom)
		}
		startStep = int(optimizers.GetGlobalStep(mctx))
		mctx = mctx.Reuse()
	} else {
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("train: %s", errtext.OneLine(err))
		}
		mctx = gomlxcontext.New()
		mctx.SetParam(gomlxcontext.ParamInitialSeed, o.Seed)
		if err := mctx.SetRNGStateFromSeed(rngSeed(o.Seed, o.StreamStart)); err != nil {
			return nil, fmt.Errorf("train: random state: %w", err)
		}
		if o.InitFrom != "" {
			if imported, err = initFrom(mctx, cfg, o); err != nil {
				return nil, fmt.Errorf("train: InitFrom: %w", err)
			}
			if imported != nil {
				log.Info("initialised from pretrained weights", "report", imported.String())
				for _, w := range imported.Warnings {
					log.Warn("pretrained weights: " + w)
				}
			} else {
				log.Info("initialised from checkpoint", "dir", o.InitFrom)
			}
			mctx = mctx.Checked(false) // model variables exist; optimizer ones are created
		}
		if o.Resume {
			log.Info("no checkpoint to resume from: starting fresh", "out", o.OutDir)
		}
	}
	res = &Result{Step: startStep, CheckpointDir: resumedFrom, Imported: imported}
	if resumedFrom != "" {
		res.CheckpointDir = filepath.Join(o.OutDir, resumedFrom)
	}

	metrics, err := openMetrics(o.OutDir, startStep, o.Resume)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer func() {
		if cerr := metrics.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("train: %s: %w", MetricsFile, cerr)
		}
	}()

	tb, err := openEvents(o.OutDir, startStep, resumedFrom)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer func() {
		if cerr := tb.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("train: %w", cerr)
		}
	}()

	backend, err := engine.NewBackend(o.Backend)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer backend.Finalize()

	t := &trainer{o: o, cfg: cfg, model: model, backend: backend, mctx: mctx, log: log, metrics: metrics, tb: tb, res: res}
	if startStep >= o.Steps {
		log.Info("nothing to train: already at the target step", "step", startStep, "steps", o.Steps)
	}
	return t.loop(ctx, startStep, trainSet, valSet)
}

type trainer struct {
	o       Options
	cfg     spec.Config
	model   ModelFn
	backend backends.Backend
	mctx    *gomlxcontext.Context
	log     *slog.Logger
	metrics *os.File
	tb      *tfevents.Writer
	res     *Result

	step     *gomlxcontext.Exec
	eval     *evaluator
	lastSave int

	micro   *gomlxcontext.Exec // recipe: the micro-batches before the last (AccumSteps > 1)
	rb      *recipeBuffers
	emaEval *evaluator // EMADecay > 0: evaluates the EMA weights (its own context)
}

func (t *trainer) loop(ctx context.Context, start int, trainSet, valSet Dataset) (*Result, error) {
	o, cfg := t.o, t.cfg
	order := &epochOrder{n: trainSet.Len(), seed: o.Seed, sampler: o.Sampler, first: o.StreamStart}
	t.lastSave = start
	if valSet != nil {
		t.eval = newEvaluator(t.backend, t.mctx, cfg, t.model, o.Batch)
		defer t.eval.close()
	}

	var err error
	if o.soft() {
		err = t.newRecipeExecs()
	} else {
		t.step, err = gomlxcontext.NewExec(t.backend, t.mctx, t.stepGraph)
	}
	defer func() {
		for _, e := range []*gomlxcontext.Exec{t.step, t.micro} {
			if e != nil {
				e.Finalize()
			}
		}
		if t.emaEval != nil {
			t.emaEval.close()
		}
	}()
	if err != nil {
		return t.res, fmt.Errorf("train: %w", err)
	}

	// The input pipeline loads batches ahead of the step (at most o.Prefetch waiting), on
	// o.Workers goroutines; it is closed (every goroutine ended) on every return path.
	stream := newBatchStream(ctx, trainSet, cfg, order, o.Batch, start, o.Steps, o.Workers, o.Prefetch)
	defer stream.close()
	for step := start; step < o.Steps; step++ {
		began := time.Now()
		p, lerr := stream.next(ctx)
		if err := ctx.Err(); err != nil {
			return t.res, t.interrupted(err)
		}
		if lerr != nil {
			return t.res, fmt.Errorf("train: step %d: training set: %w", step+1, lerr)
		}
		waited := time.Since(began)
		lr := o.LearningRate(step)
		var m StepMetrics
		if o.soft() {
			m, err = t.runRecipeStep(p.buf.images, p.buf.labels, lr, o.StreamStart+step*o.Batch)
		} else {
			m, err = t.runStep(p.buf.images, p.buf.labels, lr)
		}
		stream.release(p)
		m.InputWaitSeconds = waited.Seconds()
		if err != nil {
			return t.res, fmt.Errorf("train: step %d: %w", step+1, err)
		}
		m.Step = step + 1
		m.Seconds = time.Since(began).Seconds()
		m.ImagesPerSec = float64(o.Batch) / m.Seconds
		if !finite(m.Loss) || !finite(m.TaskLoss["style"]) || !finite(m.TaskLoss["genre"]) || !finite(m.TaskLoss["artist"]) {
			last := "none"
			if t.res.CheckpointDir != "" {
				last = t.res.CheckpointDir
			}
			t.log.Error("loss is not finite: stopping", "step", m.Step, "loss", m.Loss, "task_loss", m.TaskLoss)
			return t.res, fmt.Errorf("train: step %d: loss is %g (style %g, genre %g, artist %g): stopped; last good checkpoint: %s",
				m.Step, m.Loss, m.TaskLoss["style"], m.TaskLoss["genre"], m.TaskLoss["artist"], last)
		}
		if err := t.writeMetrics(m); err != nil {
			return t.res, err
		}
		if err := writeStepEvents(t.tb, m); err != nil {
			return t.res, fmt.Errorf("train: %w", err)
		}
		t.res.Step, t.res.Loss, t.res.TaskLoss = m.Step, m.Loss, m.TaskLoss
		if m.Step == start+1 || m.Step%o.LogEvery == 0 || m.Step == o.Steps {
			t.log.Info("train", "step", m.Step, "loss", round(m.Loss), "style", round(m.TaskLoss["style"]),
				"genre", round(m.TaskLoss["genre"]), "artist", round(m.TaskLoss["artist"]), "lr", m.LR,
				"images_per_s", round(m.ImagesPerSec))
		}
		if o.OnStep != nil {
			o.OnStep(m)
		}
		if o.CheckpointEvery > 0 && m.Step%o.CheckpointEvery == 0 && m.Step < o.Steps {
			if err := t.save(m.Step); err != nil {
				return t.res, err
			}
		}
		if t.eval != nil && o.EvalEvery > 0 && m.Step%o.EvalEvery == 0 && m.Step < o.Steps {
			if _, err := t.evaluate(ctx, valSet, m.Step); err != nil {
				return t.res, err
			}
		}
	}
	if t.res.Step > t.lastSave || t.res.CheckpointDir == "" {
		if err := t.save(t.res.Step); err != nil {
			return t.res, err
		}
	}
	if t.eval != nil {
		acc, err := t.evaluate(ctx, valSet, t.res.Step)
		if err != nil {
			return t.res, err
		}
		t.res.ValAccuracy = acc
	}
	return t.res, nil
}

// interrupted saves what was trained since the last checkpoint and wraps ctx's error.
func (t *trainer) interrupted(cause error) error {
	if t.res.Step > t.lastSave {
		if err := t.save(t.res.Step); err != nil {
			return errors.Join(fmt.Errorf("train: interrupted at step %d: %w", t.res.Step, cause), err)
		}
	}
	t.log.Info("interrupted", "step", t.res.Step, "checkpoint", t.res.CheckpointDir)
	return fmt.Errorf("train: interrupted at step %d: %w", t.res.Step, cause)
}

// stepGraph is one training step: model, multi-task loss, AdamW update with the given learning
// rate. It returns the total loss, the three focal losses and the three s_k.
func (t *trainer) stepGraph(ctx *gomlxcontext.Context, images, labels, lr *graph.Node) []*graph.Node {
	g := images.Graph()
	ctx.SetTraining(g, true)
	logits := t.forward(ctx, images)
	sources, olds := t.emaSources(ctx, g)
	total, per := MultiTaskLoss(ctx, logits, labels, DefaultGamma)
	applyFreeze(ctx, t.o.Freeze)
	out := []*graph.Node{total}
	for _, task := range spec.Tasks {
		out = append(out, per[task])
	}
	for _, task := range spec.Tasks {
		out = append(out, ctx.In(UncertaintyScope).GetVariable("log_var_"+task).ValueGraph(g))
	}
	optimizers.LearningRateVarWithValue(ctx, dtypes.Float32, t.o.LR).SetValueGraph(lr)
	opt := optimizers.Adam().LearningRate(t.o.LR).Betas(t.o.Beta1, t.o.Beta2).WeightDecay(t.o.WeightDecay).Done()
	if t.o.ClipNorm > 0 {
		grads := ctx.BuildTrainableVariablesGradientsGraph(total)
		opt.(interface {
			UpdateGraphWithGradients(*gomlxcontext.Context, []*graph.Node, dtypes.DType)
		}).UpdateGraphWithGradients(ctx, clipTrainableGradients(ctx, g, grads, t.o.ClipNorm), total.DType())
	} else {
		opt.UpdateGraph(ctx, g, total)
	}
	t.emaUpdate(ctx, g, sources, olds)
	return out
}

// runStep executes one step and returns its metrics (Step and timing not filled in).
func (t *trainer) runStep(images []float32, labels []int32, lr float64) (m StepMetrics, err error) {
	size, b := t.cfg.ImageSize, t.o.Batch
	imgT := tensors.FromFlatDataAndDimensions(images, b, 3, size, size)
	lbT := tensors.FromFlatDataAndDimensions(labels, b, len(spec.Tasks))
	lrT := tensors.FromScalar(float32(lr))
	out, err := safeExec(t.step, imgT, lbT, lrT)
	for _, x := range []*tensors.Tensor{imgT, lbT, lrT} {
		_ = x.FinalizeAll()
	}
	if err != nil {
		return m, err
	}
	defer finalizeAll(out)
	if len(out) != 1+2*len(spec.Tasks) {
		return m, fmt.Errorf("training step returned %d outputs, want %d", len(out), 1+2*len(spec.Tasks))
	}
	m = StepMetrics{Kind: "train", LR: lr, TaskLoss: map[string]float64{}, LogVar: map[string]float64{}}
	m.Loss = scalar(out[0])
	for k, task := range spec.Tasks {
		m.TaskLoss[task] = scalar(out[1+k])
		m.LogVar[task] = scalar(out[1+len(spec.Tasks)+k])
	}
	return m, nil
}

// safeExec runs exec, turning a panic (GoMLX's way of reporting graph-building errors) into
// an error.
func safeExec(exec *gomlxcontext.Exec, args ...any) (out []*tensors.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return exec.Exec(args...)
}

func finalizeAll(ts []*tensors.Tensor) {
	for _, x := range ts {
		if x != nil {
			_ = x.FinalizeAll()
		}
	}
}

func scalar(x *tensors.Tensor) float64 {
	switch x.DType() {
	case dtypes.Float64:
		return tensors.ToScalar[float64](x)
	default:
		return float64(tensors.ToScalar[float32](x))
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func round(v float64) float64 { return math.Round(v*10000) / 10000 }

func (t *trainer) evaluate(ctx context.Context, ds Dataset, step int) (map[string]float64, error) {
	began := time.Now()
	acc, err := t.eval.run(ctx, ds)
	if err != nil {
		return nil, fmt.Errorf("train: evaluation at step %d: %w", step, err)
	}
	em := EvalMetrics{Kind: "eval", Step: step, Accuracy: acc, Top5: t.eval.top5}
	if t.o.EMADecay > 0 {
		if em.EMAAccuracy, err = t.evaluateEMA(ctx, ds); err != nil {
			return nil, fmt.Errorf("train: evaluation of the EMA weights at step %d: %w", step, err)
		}
	}
	em.Seconds = time.Since(began).Seconds()
	if err := t.writeMetrics(em); err != nil {
		return nil, err
	}
	if err := writeEvalEvents(t.tb, em); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if t.o.KeepBest {
		if err := t.keepBest(step, acc); err != nil {
			return nil, err
		}
	}
	if t.o.OnEval != nil {
		t.o.OnEval(em)
	}
	args := []any{"step", step}
	for _, task := range spec.Tasks {
		if a, ok := acc[task]; ok {
			args = append(args, task, round(a))
		}
	}
	for _, task := range spec.Tasks {
		if a, ok := em.EMAAccuracy[task]; ok {
			args = append(args, "ema_"+task, round(a))
		}
	}
	t.log.Info("eval", args...)
	return acc, nil
}

func (t *trainer) writeMetrics(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("train: %s: %w", MetricsFile, err)
	}
	if _, err := t.metrics.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("train: %s: %w", MetricsFile, err)
	}
	return nil
}

// openMetrics opens metrics.jsonl for appending. A fresh run truncates it; a resumed run keeps
// only the lines up to its starting step (dropping those of steps after the checkpoint, which
// are about to be redone), rewriting the file atomically.
func openMetrics(outDir string, startStep int, resume bool) (*os.File, error) {
	path := filepath.Join(outDir, MetricsFile)
	if !resume {
		return os.Create(path)
	}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var kept []byte
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var head struct {
			Step int `json:"step"`
		}
		if json.Unmarshal([]byte(line), &head) != nil || head.Step > startStep {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		kept = append(kept, line...)
	}
	if err := atomicfile.WriteFile(path, kept, 0o644); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
}

// clipTrainableGradients is ClipGlobalNorm for grads as ctx.BuildTrainableVariablesGradientsGraph
// returns them (in ctx's variable order, which UpdateGraphWithGradients expects back), with the
// squares summed in the order of the variables' scoped names. A context's variable order is the
// order the variables were created in: the model's build order in a fresh run, the checkpoint's
// sorted order after models.LoadCheckpoint (a resumed run). float32 addition is not
// associative, so a norm summed in ctx's order could differ in its last bit between a resumed
// run and the uninterrupted one, and with it the clipping scale and every update after it.
func clipTrainableGradients(ctx *gomlxcontext.Context, g *graph.Graph, grads []*graph.Node, maxNorm float64) []*graph.Node {
	var names []string
	ctx.EnumerateVariables(func(v *gomlxcontext.Variable) {
		if v.Trainable && v.InUseByGraph(g) {
			names = append(names, v.ScopeAndName())
		}
	})
	if len(names) != len(grads) {
		panic(fmt.Sprintf("gradient clipping: %d gradients for %d trainable variables", len(grads), len(names)))
	}
	order := make([]int, len(grads))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	sorted := make([]*graph.Node, len(grads))
	for i, j := range order {
		sorted[i] = grads[j]
	}
	clipped := ClipGlobalNorm(sorted, maxNorm)
	out := make([]*graph.Node, len(grads))
	for i, j := range order {
		out[j] = clipped[i]
	}
	return out
}

// ClipGlobalNorm scales grads by min(1, maxNorm/‖grads‖₂), the norm taken over all of them
// (torch.nn.utils.clip_grad_norm_), its squares summed in grads' order.
func ClipGlobalNorm(grads []*graph.Node, maxNorm float64) []*graph.Node {
	if len(grads) == 0 {
		return grads
	}
	var sq *graph.Node
	for _, gr := range grads {
		s := graph.ReduceAllSum(graph.Square(gr))
		if sq == nil {
			sq = s
		} else {
			sq = graph.Add(sq, s)
		}
	}
	norm := graph.Sqrt(sq)
	scale := graph.Min(graph.OnesLike(norm), graph.Div(graph.Scalar(norm.Graph(), norm.DType(), maxNorm), graph.AddScalar(norm, 1e-6)))
	out := make([]*graph.Node, len(grads))
	for i, gr := range grads {
		out[i] = graph.Mul(gr, graph.ConvertDType(scale, gr.DType()))
	}
	return out
}
