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
	"sort"
	"strings"
	"time"

	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/wikiart"
)

// Files of a phased training output folder (besides one Run folder per phase, phase<name>/).
const (
	PhaseFile      = "phase"        // the name of the phase being trained (or last trained)
	DoneFile       = "done.json"    // in phase<name>/: the phase finished (its result)
	OptionsFile    = "options.json" // in phase<name>/: the training options of that phase's checkpoints
	ResultsFile    = "results.json" // the final evaluation
	RunConfigFile  = "run.json"     // the effective training configuration (what --resume reads back)
	EvaluationDir  = "eval"         // the final evaluation's report (evaluate.WriteReport)
	phaseDirPrefix = "phase"
)

// PhasesOptions configure RunPhases.
type PhasesOptions struct {
	// Config is the effective training configuration (file plus command-line overrides).
	Config *FileConfig
	// ConfigFile names where Config came from (recorded, and used in messages).
	ConfigFile string
	// Phases are the names of the phases to train, in the config's order (nil: all).
	Phases []string
	// Out is the output folder: phase<name>/ per phase, run.json, results.json, eval/.
	Out string
	// Resume continues an earlier run in Out: finished phases are skipped, an unfinished one
	// resumes from its newest checkpoint.
	Resume bool
	// From, when set, is the checkpoint the first selected phase starts from (instead of the
	// best checkpoint of the phase before it in Out), e.g. out/run/phase1/best.
	From string
	// MaxTime stops training after this wall-clock time (checkpoint saved) and evaluates the
	// best checkpoint so far (0: no limit).
	MaxTime time.Duration
	// CacheMem is the decoded-image cache budget in bytes shared by the training and validation
	// images (0: no cache; every image is decoded each time it is used).
	CacheMem int64
	// Prefetch is how many loaded batches may wait ahead of the training step (0 → 2).
	Prefetch int
	// Log receives progress lines (nil → slog.Default()).
	Log *slog.Logger
	// Progress, when set, is called at the start of each phase that trains; it returns the
	// step and evaluation callbacks of that phase (either may be nil) and a function called when
	// the phase ends, and the logger the phase's Run should use (nil: Log).
	Progress func(ph PhaseConfig, steps int) (onStep func(StepMetrics), onEval func(EvalMetrics), done func(), log *slog.Logger)
}

// PhaseOptions is options.json of a phase folder: the options every checkpoint of that phase
// was trained with. `artnet train --resume` reads them back.
type PhaseOptions struct {
	Phase         PhaseConfig `json:"phase"`
	Steps         int         `json:"steps"`
	StepsPerEpoch int         `json:"steps_per_epoch"`
	WarmupSteps   int         `json:"warmup_steps"`
	MinLR         float64     `json:"min_lr"`
	Train         TrainConfig `json:"train"`
	Data          DataConfig  `json:"data"`
	InitFrom      string      `json:"init_from,omitempty"`
	TrainImages   int         `json:"train_images"`
	// StreamStart is the training-stream position of the phase's first example (Options.StreamStart).
	StreamStart int `json:"stream_start"`
}

// RunConfig is run.json of an output folder.
type RunConfig struct {
	File   string      `json:"file"`
	Config FileConfig  `json:"config"`
	Model  spec.Config `json:"model"` // the model trained (with the data's class names)
}

// PhasesResult is results.json: the final evaluation of the best checkpoint of the last phase
// trained, on the validation images.
type PhasesResult struct {
	Checkpoint     string                 `json:"checkpoint"`
	Tasks          map[string]TaskResults `json:"tasks"`
	Seconds        float64                `json:"seconds"`
	ValImages      int                    `json:"val_images"`
	TrainImages    int                    `json:"train_images"`
	ModelConfig    spec.Config            `json:"model_config"`
	ParametersByPt map[string]int         `json:"parameters"`
	// Summary is the full evaluation (per-class metrics; confusion matrices in eval/).
	Summary *evaluate.Summary `json:"-"`
	// Imported lists the phases of this call that started from a PyTorch weights file.
	Imported []PhaseImport `json:"imported,omitempty"`
}

// PhaseImport says what a phase's pretrained weights file provided.
type PhaseImport struct {
	Phase  string               `json:"phase"`
	Report *models.ImportReport `json:"report"`
}

// TaskResults is one task's line of results.json.
type TaskResults struct {
	Top1           float64 `json:"top1"`
	Top5           float64 `json:"top5"`
	Images         int     `json:"images"`
	ClassesPresent int     `json:"classes_present"`
	Classes        int     `json:"classes"`
}

var errTimeUp = errors.New("--max-time reached")

// phaseRun is one RunPhases call.
type phaseRun struct {
	o        PhasesOptions
	fc       *FileConfig
	cfg      spec.Config
	log      *slog.Logger
	images   string
	trainSet *WikiArt
	valSet   *WikiArt
	classes  map[string][]string
	imported []PhaseImport
}

// RunPhases trains the phases of a configuration on WikiArt, one Run per phase in
// Out/phase<name> (epochs → steps with drop_last, warm-up, freezing, each phase starting from
// the best checkpoint of the one before it), skips phases already done when resuming, stops at
// MaxTime, and evaluates the best checkpoint of the last phase trained on the validation split
// with package evaluate (results.json, eval/).
func RunPhases(ctx context.Context, o PhasesOptions) (*PhasesResult, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	fc := o.Config
	if fc == nil {
		return nil, errors.New("train: no training configuration")
	}
	if fc.Data.Root == "" {
		return nil, fmt.Errorf("training config %s: field data.root: empty", o.ConfigFile)
	}
	phases, err := selectPhases(fc, o.Phases, o.ConfigFile)
	if err != nil {
		return nil, err
	}
	if err := checkPrecision(fc.Train.Precision, fc.Train.Backend); err != nil {
		return nil, fmt.Errorf("training config %s: %w", o.ConfigFile, err)
	}
	cfg, err := fc.ModelConfig()
	if err != nil {
		return nil, fmt.Errorf("training config %s: %w", o.ConfigFile, err)
	}
	if o.From != "" {
		if _, err := os.Stat(o.From); err != nil {
			return nil, fmt.Errorf("train: start checkpoint: %w", err)
		}
	}

	// Data: the split lists only; images are decoded as the steps read them.
	disjoint := fc.Data.Disjoint == nil || *fc.Data.Disjoint
	opts := []wikiart.Options{{Root: fc.Data.Root, Images: fc.Data.Images, Strict: fc.Data.Strict, Disjoint: disjoint}}
	for _, x := range fc.Data.Extra {
		opts = append(opts, wikiart.Options{Root: x, Strict: fc.Data.Strict, Disjoint: disjoint})
	}
	roots, err := wikiart.LoadRoots(opts)
	if err != nil {
		return nil, err
	}
	trSplit, vaSplit, classes, rep := roots.Train, roots.Val, roots.Classes, roots.Reports[0]
	for i, rp := range roots.Reports {
		if !rp.ImagesChecked {
			return nil, fmt.Errorf("wikiart %s: no image folder %s: %s", opts[i].Root, rp.Images, wikiart.NoImagesHint(opts[i].Root))
		}
		log.Info("wikiart", "root", opts[i].Root, "train", roots.TrainFrom[i][1]-roots.TrainFrom[i][0], "val", roots.ValFrom[i][1]-roots.ValFrom[i][0],
			"rows_without_image", rp.Missing, "strict", fc.Data.Strict)
	}
	if len(opts) > 1 {
		log.Info("wikiart: all roots", "train", len(trSplit.Samples), "val", len(vaSplit.Samples), "train_dropped_in_other_roots_val", roots.CrossRoot)
	}
	if len(trSplit.Samples) == 0 || len(vaSplit.Samples) == 0 {
		return nil, fmt.Errorf("wikiart %s: no training or no validation image found (train %d, val %d)", fc.Data.Root, len(trSplit.Samples), len(vaSplit.Samples))
	}
	cfg.Classes = classes
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("training config %s: model: %s", o.ConfigFile, errtext.OneLine(err))
	}
	if fc.Data.CacheSize != 0 {
		log.Warn("data.cache_size is ignored: images are cropped at their own size; data.cache_mem (or --cache-mem) sets the decoded-image cache budget")
	}
	r := &phaseRun{o: o, fc: fc, cfg: cfg, log: log, images: rep.Images, classes: classes}
	cache, err := NewImageCache(o.CacheMem)
	if err != nil {
		return nil, err
	}
	defer cache.Close() // after every Run and evaluation that reads it
	r.trainSet, err = NewWikiArt(ctx, trSplit.Samples, WikiArtOptions{Images: rep.Images, Config: cfg, Augment: true,
		Seed: fc.Train.Seed, MinScale: fc.Data.MinScale, Jitter: fc.Data.Jitter, Workers: fc.Data.Workers, Cache: cache,
		Policy: fc.Data.Augment, RandomErasing: fc.Data.RandomErasing})
	if err != nil {
		return nil, err
	}
	r.valSet, err = NewWikiArt(ctx, vaSplit.Samples, WikiArtOptions{Images: rep.Images, Config: cfg, Workers: fc.Data.Workers, Cache: cache})
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: output folder: %w", err)
	}
	if !o.Resume {
		for _, ph := range phases {
			if ents, _ := os.ReadDir(r.phaseDir(ph.Name)); len(ents) > 0 {
				return nil, fmt.Errorf("train: %s already holds phase %s (%s): pass --resume, or choose another --out", o.Out, ph.Name, r.phaseDir(ph.Name))
			}
		}
	}
	if err := r.saveRunConfig(phases); err != nil {
		return nil, err
	}

	trainCtx := ctx
	if o.MaxTime > 0 {
		var cancel context.CancelFunc
		trainCtx, cancel = context.WithTimeoutCause(ctx, o.MaxTime, errTimeUp)
		defer cancel()
	}
	var last string
	for i, ph := range phases {
		from := ""
		if i == 0 && o.From != "" {
			from = o.From
		}
		dir, err := r.runPhase(trainCtx, ph, from)
		if err != nil {
			if errors.Is(context.Cause(trainCtx), errTimeUp) && ctx.Err() == nil {
				log.Warn("--max-time reached: training stopped, evaluating the best checkpoint so far", "phase", ph.Name, "err", err)
				if _, serr := os.Stat(filepath.Join(dir, BestDir, models.ConfigFile)); serr == nil || last == "" {
					last = dir
				}
				break
			}
			return nil, err
		}
		last = dir
	}
	if last == "" {
		return nil, errors.New("train: no phase trained anything to evaluate")
	}
	if n, b := cache.Stats(); o.CacheMem > 0 {
		log.Info("image cache", "images", n, "bytes", b, "budget", o.CacheMem)
	}
	return r.finalEval(ctx, last)
}

// selectPhases returns the named phases of fc in the config's order (all when names is nil).
func selectPhases(fc *FileConfig, names []string, file string) ([]PhaseConfig, error) {
	if len(names) == 0 {
		return fc.Phases, nil
	}
	var out []PhaseConfig
	for _, n := range names {
		ph, ok := fc.Phase(n)
		if !ok {
			all := make([]string, len(fc.Phases))
			for i, q := range fc.Phases {
				all[i] = q.Name
			}
			return nil, fmt.Errorf("flag --phase: no phase %q in %s (phases: %s, or all)", n, file, strings.Join(all, ", "))
		}
		out = append(out, ph)
	}
	return out, nil
}

// PhaseDir is the Run folder of phase name in output folder out.
func PhaseDir(out, name string) string { return filepath.Join(out, phaseDirPrefix+name) }

func (r *phaseRun) phaseDir(name string) string { return PhaseDir(r.o.Out, name) }

// saveRunConfig writes run.json: the whole configuration, with the selected phases' entries
// as they are trained now (an earlier run's other phases kept as that run recorded them).
func (r *phaseRun) saveRunConfig(selected []PhaseConfig) error {
	fc := *r.fc
	fc.Phases = append([]PhaseConfig(nil), r.fc.Phases...)
	for _, s := range selected {
		for i := range fc.Phases {
			if fc.Phases[i].Name == s.Name {
				fc.Phases[i] = s
			}
		}
	}
	b, _ := json.MarshalIndent(RunConfig{File: r.o.ConfigFile, Config: fc, Model: r.cfg}, "", "  ")
	return atomicfile.WriteFile(filepath.Join(r.o.Out, RunConfigFile), append(b, '\n'), 0o644)
}

// ReadRunConfig reads out/run.json (the effective configuration of an earlier run).
func ReadRunConfig(out string) (*RunConfig, error) {
	path := filepath.Join(out, RunConfigFile)
	var rc RunConfig
	if err := readJSON(path, &rc); err != nil {
		return nil, err
	}
	if err := rc.Config.validate(); err != nil {
		return nil, fmt.Errorf("%s: %s", path, errtext.OneLine(err))
	}
	return &rc, nil
}

// ReadPhaseOptions reads the options.json of a phase folder.
func ReadPhaseOptions(phaseDir string) (*PhaseOptions, error) {
	var po PhaseOptions
	if err := readJSON(filepath.Join(phaseDir, OptionsFile), &po); err != nil {
		return nil, err
	}
	return &po, nil
}

// readJSON decodes the JSON file at path into v; errors other than a missing file name it.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %s", path, errtext.OneLine(err))
	}
	return nil
}

// LocateRun finds, for a checkpoint or phase folder dir (e.g. out/run/phase1/best), the output
// folder holding it (the nearest ancestor with run.json) and the name of its phase ("" when
// dir is not inside a phase folder).
func LocateRun(dir string) (out, phase string, ok bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", false
	}
	for d := abs; ; d = filepath.Dir(d) {
		if base := filepath.Base(d); strings.HasPrefix(base, phaseDirPrefix) && phase == "" {
			if _, err := os.Stat(filepath.Join(d, OptionsFile)); err == nil {
				phase = strings.TrimPrefix(base, phaseDirPrefix)
			}
		}
		if _, err := os.Stat(filepath.Join(d, RunConfigFile)); err == nil {
			return d, phase, true
		}
		if filepath.Dir(d) == d {
			return "", "", false
		}
	}
}

// previous returns the checkpoint a phase starts from: the best (else newest) checkpoint of the
// phase before it in the config, if that was trained into this output folder.
func (r *phaseRun) previous(name string) string {
	for i, p := range r.fc.Phases {
		if p.Name != name || i == 0 {
			continue
		}
		prev := r.phaseDir(r.fc.Phases[i-1].Name)
		if _, err := os.Stat(filepath.Join(prev, BestDir, models.ConfigFile)); err == nil {
			return filepath.Join(prev, BestDir)
		}
		if ck, err := ResolveCheckpoint(prev); err == nil {
			return ck
		}
	}
	return ""
}

// Steps converts a phase's epochs to steps over n training images (drop_last batches, at
// least one step), and the warm-up epochs to warm-up steps.
func Steps(ph PhaseConfig, warmupEpochs float64, n int) (steps, perEpoch, warmup int) {
	perEpoch = max(n/ph.Batch, 1)
	steps = max(int(math.Ceil(ph.Epochs*float64(perEpoch))), 1)
	warmup = max(min(int(math.Round(warmupEpochs*float64(perEpoch))), steps-1), 0)
	return steps, perEpoch, warmup
}

// runOptions are the Run options of phase ph (output folder dir, starting from initFrom), and
// its steps per epoch.
func (r *phaseRun) runOptions(ph PhaseConfig, dir, initFrom string) (Options, int) {
	n := r.trainSet.Len()
	steps, perEpoch, warmup := Steps(ph, r.fc.Train.WarmupEpochs, n)
	tc := r.fc.Train
	o := Options{
		Config: r.cfg, OutDir: dir, Steps: steps, Batch: ph.Batch, LR: ph.LR,
		WeightDecay: tc.WeightDecay, WarmupSteps: warmup, MinLR: ph.LR * tc.MinLRFactor,
		CheckpointEvery: perEpoch, EvalEvery: perEpoch, KeepCheckpoints: tc.Keep, LogEvery: max(perEpoch/4, 1),
		Seed: tc.Seed, Resume: r.o.Resume, Backend: tc.Backend,
		Freeze: ph.Freeze, ClipNorm: tc.ClipNorm, KeepBest: true,
		InitFrom: initFrom, AllowPartial: tc.AllowPartial, Workers: r.fc.Data.Workers, Prefetch: r.o.Prefetch,
		StreamStart:    r.streamStart(ph),
		LabelSmoothing: tc.LabelSmoothing, AccumSteps: tc.AccumSteps, EMADecay: tc.EMADecay, Precision: tc.Precision,
		Mix: Mix{Mixup: r.fc.Data.Mixup, CutMix: r.fc.Data.CutMix, Prob: r.fc.Data.MixProb, SwitchProb: r.fc.Data.MixSwitchProb},
	}
	for _, t := range r.fc.Data.Balanced {
		k := taskIndex(t)
		cls := make([]int, n)
		for i, s := range r.trainSet.Samples() {
			cls[i] = s.Labels[k]
		}
		o.Sampler = BalancedSampler(cls)
	}
	return o, perEpoch
}

// streamStart is where phase ph's examples begin in the training stream: where the phase
// before it in the configuration ended — as its options.json in this output folder records
// (its own start plus steps·batch: what it really trained, --epochs overrides included), else
// as the configuration counts every earlier phase — so that the phases read one continuous
// stream: phase 2 goes on with epoch 3 of a run whose phase 1 had 2 epochs, with new sampler
// draws and new crops.
func (r *phaseRun) streamStart(ph PhaseConfig) int {
	pos := 0
	for i, p := range r.fc.Phases {
		if p.Name == ph.Name {
			if i > 0 {
				if po, err := ReadPhaseOptions(r.phaseDir(r.fc.Phases[i-1].Name)); err == nil && po.Steps > 0 && po.Phase.Batch > 0 {
					return po.StreamStart + po.Steps*po.Phase.Batch
				}
			}
			break
		}
		steps, _, _ := Steps(p, r.fc.Train.WarmupEpochs, r.trainSet.Len())
		pos += steps * p.Batch
	}
	return pos
}

func (r *phaseRun) runPhase(ctx context.Context, ph PhaseConfig, from string) (string, error) {
	dir := r.phaseDir(ph.Name)
	if b, err := os.ReadFile(filepath.Join(dir, DoneFile)); err == nil && r.o.Resume {
		r.log.Info("phase already done: skipping", "phase", ph.Name, "result", strings.TrimSpace(string(b)))
		return dir, nil
	}
	n := r.trainSet.Len()
	tc := r.fc.Train
	initFrom := from // --from / --resume CHECKPOINT, else the phase's init_from, the previous phase, train.pretrained
	if initFrom == "" {
		initFrom = r.fc.StartFrom(ph, r.previous(ph.Name))
	}
	o, perEpoch := r.runOptions(ph, dir, initFrom)
	steps, warmup := o.Steps, o.WarmupSteps
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dir, fmt.Errorf("train: %w", err)
	}
	po := PhaseOptions{Phase: ph, Steps: steps, StepsPerEpoch: perEpoch, WarmupSteps: warmup, MinLR: o.MinLR,
		Train: tc, Data: r.fc.Data, InitFrom: initFrom, TrainImages: n, StreamStart: o.StreamStart}
	if old, err := ReadPhaseOptions(dir); err == nil && r.o.Resume {
		if old.Phase.Batch != ph.Batch || old.Train.Seed != tc.Seed || old.TrainImages != n || old.StreamStart != o.StreamStart {
			r.log.Warn("resuming with other batch, seed, training images or stream start than the checkpoints were trained with: the run will not repeat the uninterrupted one",
				"phase", ph.Name, "batch", old.Phase.Batch, "now", ph.Batch, "seed", old.Train.Seed, "now_seed", tc.Seed, "images", old.TrainImages, "now_images", n,
				"stream_start", old.StreamStart, "now_stream_start", o.StreamStart)
		}
	}
	b, _ := json.MarshalIndent(po, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, OptionsFile), append(b, '\n'), 0o644); err != nil {
		return dir, err
	}
	o.Record = b // and in every checkpoint of the phase (its options.json: models.ReadCheckpointOptions)
	if err := atomicfile.WriteFile(filepath.Join(r.o.Out, PhaseFile), []byte(ph.Name+"\n"), 0o644); err != nil {
		return dir, err
	}
	if o.InitFrom == "" && ph.Name != r.fc.Phases[0].Name {
		r.log.Warn("no earlier phase in this output folder: this phase starts from freshly initialised weights", "phase", ph.Name)
	}
	r.log.Info("phase", "name", ph.Name, "epochs", ph.Epochs, "steps", steps, "steps_per_epoch", perEpoch, "batch", ph.Batch,
		"lr", ph.LR, "freeze", ph.Freeze, "init_from", o.InitFrom)
	runLog := r.log
	var done func()
	if r.o.Progress != nil {
		var l *slog.Logger
		o.OnStep, o.OnEval, done, l = r.o.Progress(ph, steps)
		if l != nil {
			runLog = l
		}
	}
	res, err := Run(ctx, o, r.trainSet, r.valSet, runLog)
	if done != nil {
		done()
	}
	if err != nil {
		return dir, err
	}
	if res.Imported != nil {
		r.imported = append(r.imported, PhaseImport{Phase: ph.Name, Report: res.Imported})
	}
	b, _ = json.Marshal(map[string]any{"phase": ph.Name, "step": res.Step, "loss": res.Loss, "val_top1": res.ValAccuracy, "checkpoint": res.CheckpointDir})
	if err := atomicfile.WriteFile(filepath.Join(dir, DoneFile), append(b, '\n'), 0o644); err != nil {
		return dir, err
	}
	return dir, nil
}

// finalEval evaluates the best checkpoint of the last phase trained on the validation split
// with package evaluate, and writes results.json and eval/ (per-class metrics, confusion
// matrices).
func (r *phaseRun) finalEval(ctx context.Context, phaseDir string) (*PhasesResult, error) {
	ck := filepath.Join(phaseDir, BestDir)
	if _, err := os.Stat(filepath.Join(ck, models.ConfigFile)); err != nil {
		if ck, err = ResolveCheckpoint(phaseDir); err != nil {
			return nil, err
		}
	}
	p, err := models.OpenPredictor(ck, r.fc.Train.Backend)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	cfg := p.Config()
	batch := r.fc.Train.EvalBatch
	if batch <= 0 {
		batch = 32
	}
	sum, err := evaluate.Run(ctx, p, r.valSet.Samples(), evaluate.Options{Images: r.images, Classes: r.classes, Batch: batch, Log: r.log})
	if err != nil {
		return nil, err
	}
	sum.Model, sum.Runtime, sum.Data, sum.Split = ck, "gomlx", r.fc.Data.Root, "val"
	res := &PhasesResult{Checkpoint: ck, Tasks: map[string]TaskResults{}, Seconds: sum.Seconds,
		ValImages: r.valSet.Len(), TrainImages: r.trainSet.Len(), ModelConfig: cfg, ParametersByPt: models.ParamCounts(p.Context()), Summary: sum, Imported: r.imported}
	for _, tr := range sum.Tasks {
		if tr.Samples == 0 {
			continue
		}
		res.Tasks[tr.Task] = TaskResults{Top1: tr.Top1, Top5: tr.TopK, Images: tr.Samples,
			ClassesPresent: len(tr.PerClass) - len(tr.Absent), Classes: cfg.NumClasses(tr.Task)}
	}
	if err := evaluate.WriteReport(filepath.Join(r.o.Out, EvaluationDir), sum); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(r.o.Out, ResultsFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// SortedTasks returns the task names of res in spec.Tasks order.
func (res *PhasesResult) SortedTasks() []string {
	tasks := make([]string, 0, len(res.Tasks))
	for t := range res.Tasks {
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool { return taskIndex(tasks[i]) < taskIndex(tasks[j]) })
	return tasks
}

// ResolveCheckpoint accepts a checkpoint directory or a training output directory; for the
// latter it picks the newest checkpoint that loads (the "latest" pointer first).
func ResolveCheckpoint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, models.ConfigFile)); err == nil {
		return dir, nil
	}
	var cands []string
	if b, err := os.ReadFile(filepath.Join(dir, LatestFile)); err == nil {
		cands = append(cands, filepath.Join(dir, strings.TrimSpace(string(b))))
	}
	all, _ := filepath.Glob(filepath.Join(dir, checkpointPfx+"*"))
	sort.Sort(sort.Reverse(sort.StringSlice(all)))
	cands = append(cands, all...)
	if len(cands) == 0 {
		return "", fmt.Errorf("checkpoint %s: no %s, no %s pointer and no %s* directories", dir, models.ConfigFile, LatestFile, checkpointPfx)
	}
	var errs []error
	for _, cand := range cands {
		if _, _, err := models.LoadCheckpoint(cand); err != nil {
			errs = append(errs, err)
			slog.Warn("skipping checkpoint that does not load", "dir", cand, "err", err)
			continue
		}
		return cand, nil
	}
	return "", fmt.Errorf("checkpoint %s: none of %d candidates loads: %w", dir, len(cands), errors.Join(errs...))
}
