package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	artgraph "github.com/artnet/artnet/graph"
	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/train"
	"github.com/artnet/artnet/wikiart"
)

// Files of a WikiArt training output folder (besides one train.Run folder per phase, phase<name>/).
const (
	phaseFile   = "phase"        // the name of the phase being trained (or last trained)
	doneFile    = "done.json"    // in phase<name>/: the phase finished (its train.Result)
	resultsFile = "results.json" // the final evaluation
	usedConfig  = "config.json"  // the effective training configuration
)

// wikiartFlags are the flags of `artnet train` that only WikiArt training reads.
func wikiartFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Value: "configs/train.yaml", Usage: "training configuration (YAML; see configs/base.yaml)"},
		&cli.StringFlag{Name: "phase", Value: "all", Usage: "phase to train: a phase name from the config (1, 2, 3) or all"},
		&cli.Float64Flag{Name: "epochs", Usage: "override the epochs of the selected phase(s)"},
		&cli.StringFlag{Name: "data", Usage: "WikiArt folder (CSV splits, images/); default: $ARTNET_DATA, else the config's data.root (data/wikiart)"},
		&cli.BoolFlag{Name: "strict", Usage: "refuse CSV rows whose image is missing instead of skipping them"},
		&cli.IntFlag{Name: "workers", Usage: "image decoding goroutines (0: the config's, or all cores)"},
		&cli.DurationFlag{Name: "max-time", Usage: "stop training after this wall-clock time (checkpoint saved), then evaluate the best checkpoint (0: no limit)"},
		&cli.BoolFlag{Name: "progress", Value: true, Usage: "a progress bar when stderr is a terminal (plain log lines otherwise)"},
	}
}

// wikiartRun is one `artnet train` on WikiArt.
type wikiartRun struct {
	fc       *train.FileConfig
	cfg      spec.Config
	out      string
	resume   bool
	progress bool
	stdout   io.Writer
	trainSet *train.WikiArt
	valSet   *train.WikiArt
	log      *slog.Logger
}

func trainWikiArt(c *cli.Context) error {
	ctx := c.Context
	log := slog.Default()
	fc, err := train.LoadFileConfig(c.String("config"))
	if err != nil {
		return err
	}
	if c.IsSet("seed") {
		fc.Train.Seed = c.Int64("seed")
	}
	if c.IsSet("backend") {
		fc.Train.Backend = c.String("backend")
	}
	if c.IsSet("workers") {
		fc.Data.Workers = c.Int("workers")
	}
	if c.Bool("strict") {
		fc.Data.Strict = true
	}
	if c.IsSet("pretrained") {
		fc.Train.Pretrained = c.String("pretrained")
	}
	if c.Bool("allow-partial") {
		fc.Train.AllowPartial = true
	}
	if p := fc.Train.Pretrained; p != "" {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("pretrained weights (--pretrained / train.pretrained): %w", err)
		}
	}
	if root, from := wikiart.ResolveRoot(c.String("data"), fc.Data.Root); from != "config" {
		fc.Data.Root, fc.Data.Images = root, ""
	}
	phases := fc.Phases
	if p := c.String("phase"); p != "all" {
		ph, ok := fc.Phase(p)
		if !ok {
			names := make([]string, len(fc.Phases))
			for i, q := range fc.Phases {
				names[i] = q.Name
			}
			return fmt.Errorf("flag --phase: no phase %q in %s (phases: %s, or all)", p, c.String("config"), strings.Join(names, ", "))
		}
		phases = []train.PhaseConfig{ph}
	}
	for i := range phases {
		if c.IsSet("epochs") {
			phases[i].Epochs = c.Float64("epochs")
		}
		if c.IsSet("lr") {
			phases[i].LR = c.Float64("lr")
		}
		if c.IsSet("batch") {
			phases[i].Batch = c.Int("batch")
		}
		if !(phases[i].Epochs > 0) || phases[i].Batch <= 0 || !(phases[i].LR > 0) {
			return fmt.Errorf("flags --epochs/--batch/--lr: must be > 0 (phase %s: %g epochs, batch %d, lr %g)", phases[i].Name, phases[i].Epochs, phases[i].Batch, phases[i].LR)
		}
	}
	cfg, err := fc.ModelConfig()
	if err != nil {
		return fmt.Errorf("training config %s: %w", c.String("config"), err)
	}

	// Data.
	began := time.Now()
	disjoint := fc.Data.Disjoint == nil || *fc.Data.Disjoint
	trSplit, vaSplit, classes, rep, err := wikiart.Load(wikiart.Options{Root: fc.Data.Root, Images: fc.Data.Images, Strict: fc.Data.Strict, Disjoint: disjoint})
	if err != nil {
		return err
	}
	if !rep.ImagesChecked {
		return fmt.Errorf("wikiart %s: no image folder %s: %s", fc.Data.Root, rep.Images, wikiart.NoImagesHint(fc.Data.Root))
	}
	log.Info("wikiart", "root", fc.Data.Root, "train", len(trSplit.Samples), "val", len(vaSplit.Samples),
		"rows_without_image", rep.Missing, "strict", fc.Data.Strict)
	if len(trSplit.Samples) == 0 || len(vaSplit.Samples) == 0 {
		return fmt.Errorf("wikiart %s: no training or no validation image found (train %d, val %d)", fc.Data.Root, len(trSplit.Samples), len(vaSplit.Samples))
	}
	cfg.Classes = classes
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("training config %s: model: %s", c.String("config"), errtext.OneLine(err))
	}
	r := &wikiartRun{fc: fc, cfg: cfg, out: c.String("out"), resume: c.Bool("resume"), progress: c.Bool("progress"), log: log, stdout: c.App.Writer}
	r.trainSet, err = train.NewWikiArt(ctx, trSplit.Samples, train.WikiArtOptions{Images: rep.Images, Config: cfg, Augment: true,
		Seed: fc.Train.Seed, CacheSize: fc.Data.CacheSize, MinScale: fc.Data.MinScale, Jitter: fc.Data.Jitter, Workers: fc.Data.Workers})
	if err != nil {
		return err
	}
	r.valSet, err = train.NewWikiArt(ctx, vaSplit.Samples, train.WikiArtOptions{Images: rep.Images, Config: cfg, Workers: fc.Data.Workers})
	if err != nil {
		return err
	}
	log.Info("images decoded and cached", "seconds", math.Round(time.Since(began).Seconds()*10)/10)

	if err := os.MkdirAll(r.out, 0o755); err != nil {
		return fmt.Errorf("flag --out: %w", err)
	}
	if !r.resume {
		if ents, _ := filepath.Glob(filepath.Join(r.out, "phase*")); len(ents) > 0 {
			return fmt.Errorf("train: %s already holds a training run (%s): pass --resume, or choose another --out", r.out, filepath.Base(ents[0]))
		}
	}
	eff, _ := json.MarshalIndent(map[string]any{"file": c.String("config"), "model": cfg, "data": fc.Data, "train": fc.Train, "phases": phases}, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(r.out, usedConfig), append(eff, '\n'), 0o644); err != nil {
		return err
	}

	trainCtx := ctx
	if d := c.Duration("max-time"); d > 0 {
		var cancel context.CancelFunc
		trainCtx, cancel = context.WithTimeoutCause(ctx, d, errTimeUp)
		defer cancel()
	}
	var last string
	for _, ph := range phases {
		dir, err := r.runPhase(trainCtx, ph)
		if err != nil {
			if errors.Is(context.Cause(trainCtx), errTimeUp) && ctx.Err() == nil {
				r.log.Warn("--max-time reached: training stopped, evaluating the best checkpoint so far", "phase", ph.Name, "err", err)
				if _, serr := os.Stat(filepath.Join(dir, train.BestDir, models.ConfigFile)); serr == nil || last == "" {
					last = dir
				}
				break
			}
			return err
		}
		last = dir
	}
	if last == "" {
		return errors.New("train: no phase trained anything to evaluate")
	}
	return r.finalEval(ctx, last)
}

// phaseDir is the train.Run folder of a phase.
func (r *wikiartRun) phaseDir(name string) string { return filepath.Join(r.out, "phase"+name) }

// previous returns the checkpoint a phase starts from: the best (else newest) checkpoint of the
// phase before it in the config, if that was trained into this output folder.
func (r *wikiartRun) previous(name string) string {
	for i, p := range r.fc.Phases {
		if p.Name != name || i == 0 {
			continue
		}
		prev := r.phaseDir(r.fc.Phases[i-1].Name)
		if _, err := os.Stat(filepath.Join(prev, train.BestDir, models.ConfigFile)); err == nil {
			return filepath.Join(prev, train.BestDir)
		}
		if ck, err := resolveCheckpoint(prev); err == nil {
			return ck
		}
	}
	return ""
}

var errTimeUp = errors.New("--max-time reached")

func (r *wikiartRun) runPhase(ctx context.Context, ph train.PhaseConfig) (string, error) {
	dir := r.phaseDir(ph.Name)
	if b, err := os.ReadFile(filepath.Join(dir, doneFile)); err == nil && r.resume {
		r.log.Info("phase already done: skipping", "phase", ph.Name, "result", strings.TrimSpace(string(b)))
		return dir, nil
	}
	n := r.trainSet.Len()
	perEpoch := max(n/ph.Batch, 1) // drop_last
	steps := max(int(math.Ceil(ph.Epochs*float64(perEpoch))), 1)
	warmup := min(int(math.Round(r.fc.Train.WarmupEpochs*float64(perEpoch))), steps-1)
	o := train.Options{
		Config: r.cfg, OutDir: dir, Steps: steps, Batch: ph.Batch, LR: ph.LR,
		WeightDecay: r.fc.Train.WeightDecay, WarmupSteps: max(warmup, 0), MinLR: ph.LR * r.fc.Train.MinLRFactor,
		CheckpointEvery: perEpoch, EvalEvery: perEpoch, KeepCheckpoints: r.fc.Train.Keep, LogEvery: max(perEpoch/4, 1),
		Seed: r.fc.Train.Seed, Resume: r.resume, Backend: r.fc.Train.Backend,
		Freeze: ph.Freeze, ClipNorm: r.fc.Train.ClipNorm, KeepBest: true,
		InitFrom: r.fc.StartFrom(ph, r.previous(ph.Name)), AllowPartial: r.fc.Train.AllowPartial,
	}
	for _, t := range r.fc.Data.Balanced {
		k := taskIndexOf(t)
		cls := make([]int, n)
		for i, s := range r.trainSet.Samples() {
			cls[i] = s.Labels[k]
		}
		o.Sampler = train.BalancedSampler(cls)
	}
	if err := atomicfile.WriteFile(filepath.Join(r.out, phaseFile), []byte(ph.Name+"\n"), 0o644); err != nil {
		return "", err
	}
	if o.InitFrom == "" && ph.Name != r.fc.Phases[0].Name {
		r.log.Warn("no earlier phase in this output folder: this phase starts from freshly initialised weights", "phase", ph.Name)
	}
	r.log.Info("phase", "name", ph.Name, "epochs", ph.Epochs, "steps", steps, "steps_per_epoch", perEpoch, "batch", ph.Batch,
		"lr", ph.LR, "freeze", ph.Freeze, "init_from", o.InitFrom)
	var bar *stepBar
	if r.progress {
		bar = newStepBar(steps, ph)
	}
	if bar != nil {
		o.OnStep = bar.step
		o.OnEval = bar.eval
	}
	runLog := r.log
	if bar != nil { // keep the bar readable: only warnings and errors as log lines
		runLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	res, err := train.Run(ctx, o, r.trainSet, r.valSet, runLog)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return dir, err
	}
	if res.Imported != nil {
		fmt.Fprintf(r.stdout, "phase %s started from %s\n", ph.Name, res.Imported)
	}
	b, _ := json.Marshal(map[string]any{"phase": ph.Name, "step": res.Step, "loss": res.Loss, "val_top1": res.ValAccuracy, "checkpoint": res.CheckpointDir})
	if err := atomicfile.WriteFile(filepath.Join(dir, doneFile), append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func taskIndexOf(t string) int {
	for k, name := range spec.Tasks {
		if name == t {
			return k
		}
	}
	return -1
}

// wikiartResults is results.json: the final evaluation on the validation images.
type wikiartResults struct {
	Checkpoint     string                 `json:"checkpoint"`
	Tasks          map[string]taskResults `json:"tasks"`
	Seconds        float64                `json:"seconds"`
	ValImages      int                    `json:"val_images"`
	TrainImages    int                    `json:"train_images"`
	ModelConfig    spec.Config            `json:"model_config"`
	ParametersByPt map[string]int         `json:"parameters"`
}

type taskResults struct {
	Top1           float64 `json:"top1"`
	Top5           float64 `json:"top5"`
	Images         int     `json:"images"`
	ClassesPresent int     `json:"classes_present"`
	Classes        int     `json:"classes"`
}

// finalEval evaluates the best checkpoint of the last phase trained on the validation set and
// writes results.json and a markdown table to stdout.
func (r *wikiartRun) finalEval(ctx context.Context, phaseDir string) error {
	ck := filepath.Join(phaseDir, train.BestDir)
	if _, err := os.Stat(filepath.Join(ck, models.ConfigFile)); err != nil {
		if ck, err = resolveCheckpoint(phaseDir); err != nil {
			return err
		}
	}
	mctx, cfg, err := models.LoadCheckpoint(ck)
	if err != nil {
		return err
	}
	backend, err := artgraph.NewBackend(r.fc.Train.Backend)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	began := time.Now()
	batch := r.fc.Train.EvalBatch
	if batch <= 0 {
		batch = 32
	}
	ev, err := train.EvaluateTopK(ctx, backend, mctx.Reuse(), cfg, r.valSet, batch)
	if err != nil {
		return err
	}
	res := wikiartResults{Checkpoint: ck, Tasks: map[string]taskResults{}, Seconds: time.Since(began).Seconds(),
		ValImages: r.valSet.Len(), TrainImages: r.trainSet.Len(), ModelConfig: cfg, ParametersByPt: models.ParamCounts(mctx)}
	for k, task := range spec.Tasks {
		present := map[int]bool{}
		for _, s := range r.valSet.Samples() {
			if s.Labels[k] >= 0 {
				present[s.Labels[k]] = true
			}
		}
		if _, ok := ev.Top1[task]; !ok {
			continue
		}
		res.Tasks[task] = taskResults{Top1: ev.Top1[task], Top5: ev.Top5[task], Images: ev.Images[task],
			ClassesPresent: len(present), Classes: cfg.NumClasses(task)}
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(r.out, resultsFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	w := r.stdout
	fmt.Fprintf(w, "evaluated %s on %d validation images in %.1f s\n\n", ck, r.valSet.Len(), res.Seconds)
	fmt.Fprintln(w, "| task | top-1 | top-5 | classes present / all | images | chance (top-1, uniform over present) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	tasks := make([]string, 0, len(res.Tasks))
	for t := range res.Tasks {
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool { return taskIndexOf(tasks[i]) < taskIndexOf(tasks[j]) })
	for _, t := range tasks {
		x := res.Tasks[t]
		fmt.Fprintf(w, "| %s | %.3f | %.3f | %d / %d | %d | %.3f |\n", t, x.Top1, x.Top5, x.ClassesPresent, x.Classes, x.Images, 1/float64(max(x.ClassesPresent, 1)))
	}
	return nil
}

// stepBar is a progress bar on a terminal stderr (images/s, loss, ETA).
type stepBar struct {
	bar   *progressbar.ProgressBar
	batch int
	name  string
	acc   string
}

func newStepBar(steps int, ph train.PhaseConfig) *stepBar {
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	b := progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("phase "+ph.Name),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
	)
	return &stepBar{bar: b, batch: ph.Batch, name: ph.Name}
}

func (s *stepBar) step(m train.StepMetrics) {
	s.bar.Describe(fmt.Sprintf("phase %s loss %.3f %.1f img/s%s", s.name, m.Loss, m.ImagesPerSec, s.acc))
	_ = s.bar.Set(m.Step)
}

func (s *stepBar) eval(m train.EvalMetrics) {
	s.acc = fmt.Sprintf(" val %.3f", train.Score(m.Accuracy))
}

func (s *stepBar) finish() {
	_ = s.bar.Finish()
	fmt.Fprintln(os.Stderr)
}
