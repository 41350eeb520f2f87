package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/train"
	"github.com/artnet/artnet/wikiart"
)

// wikiartFlags are the flags of `artnet train` that only WikiArt training reads.
func wikiartFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Value: "configs/train.yaml", Usage: "training configuration (YAML; see configs/base.yaml); with --resume, default: the run's own run.json"},
		&cli.StringFlag{Name: "phase", Value: "all", Usage: "phase to train: a phase name from the config (1, 2, 3) or all"},
		&cli.Float64Flag{Name: "epochs", Usage: "override the epochs of the selected phase(s)"},
		&cli.StringFlag{Name: "data", Usage: "WikiArt folder (CSV splits, images/); default: $ARTNET_DATA, else the config's data.root (data/wikiart)"},
		&cli.BoolFlag{Name: "strict", Usage: "refuse CSV rows whose image is missing instead of skipping them"},
		&cli.IntFlag{Name: "workers", Usage: "image decoding goroutines (0: the config's, or all cores)"},
		&cli.StringFlag{Name: "cache-mem", Usage: "decoded-image cache budget, e.g. 2GiB (default: the config's data.cache_mem; 0: decode every image each time)"},
		&cli.IntFlag{Name: "prefetch", Value: 2, Usage: "loaded batches that may wait ahead of the training step"},
		&cli.StringFlag{Name: "from", Usage: "checkpoint the (first) selected phase starts from, e.g. out/run/phase1/best (default: the previous phase's best in --out)"},
		&cli.DurationFlag{Name: "max-time", Usage: "stop training after this wall-clock time (checkpoint saved), then evaluate the best checkpoint (0: no limit)"},
		&cli.BoolFlag{Name: "progress", Value: true, Usage: "a progress bar when stderr is a terminal (plain log lines otherwise)"},
	}
}

// trainWikiArt parses the flags of `artnet train` (WikiArt) into train.PhasesOptions and runs
// train.RunPhases. `--resume [CHECKPOINT]` (the checkpoint last, as the seed's scripts write it)
// takes the training options from the run the checkpoint belongs to.
func trainWikiArt(c *cli.Context) error {
	o := train.PhasesOptions{Out: c.String("out"), Resume: c.Bool("resume"), MaxTime: c.Duration("max-time"),
		From: c.String("from"), Prefetch: c.Int("prefetch"), Log: slog.Default()}
	args := c.Args().Slice()
	var resumeFrom string
	switch {
	case len(args) == 1 && o.Resume:
		resumeFrom = args[0]
	case len(args) > 1 && o.Resume:
		return fmt.Errorf("train: %q after --resume %s is not read as a flag: put the checkpoint last", args[1], args[0])
	case len(args) > 0:
		return fmt.Errorf("train: unexpected argument %q (a checkpoint goes last, after --resume; other flags before it)", args[0])
	}
	if resumeFrom != "" && o.From != "" {
		return fmt.Errorf("flags --resume %s and --from %s: give one", resumeFrom, o.From)
	}

	// The configuration: --config, else (resuming) the run's own run.json, else the default file.
	phase := c.String("phase")
	var runOut, ckPhase string
	if resumeFrom != "" {
		var ok bool
		if runOut, ckPhase, ok = train.LocateRun(resumeFrom); !ok && !c.IsSet("config") {
			return fmt.Errorf("flag --resume %s: not inside a training output folder (no %s above it): pass --config and --phase, or use --from", resumeFrom, train.RunConfigFile)
		}
		if !c.IsSet("out") && runOut != "" {
			o.Out = runOut
		}
		if abs, _ := filepath.Abs(resumeFrom); runOut != "" && abs == runOut {
			resumeFrom = "" // --resume RUN_FOLDER: continue that run
		}
	}
	var fc *train.FileConfig
	o.ConfigFile = c.String("config")
	if !c.IsSet("config") && o.Resume {
		src := o.Out
		if runOut != "" {
			src = runOut
		}
		if rc, err := train.ReadRunConfig(src); err == nil {
			fc, o.ConfigFile = &rc.Config, rc.File
			o.Log.Info("training options from the earlier run", "file", src+"/"+train.RunConfigFile)
		} else if !os.IsNotExist(err) {
			return err
		}
	}
	if fc == nil {
		var err error
		if fc, err = train.LoadFileConfig(o.ConfigFile); err != nil {
			return err
		}
	}

	// Which phases, and where the first starts from.
	switch {
	case phase != "all":
		o.Phases = []string{phase}
		if resumeFrom != "" && phase != ckPhase {
			o.From = resumeFrom // a new phase from another phase's checkpoint
		}
	case ckPhase != "":
		for i, p := range fc.Phases { // continue the run from the checkpoint's phase on
			if p.Name == ckPhase {
				for _, q := range fc.Phases[i:] {
					o.Phases = append(o.Phases, q.Name)
				}
			}
		}
	case resumeFrom != "":
		return fmt.Errorf("flag --resume %s: not inside a phase folder of a run: say which --phase starts from it", resumeFrom)
	}

	// Command-line overrides.
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
	if c.IsSet("cache-mem") {
		fc.Data.CacheMem = c.String("cache-mem")
	}
	if root, from := wikiart.ResolveRoot(c.String("data"), fc.Data.Root); from != "config" {
		fc.Data.Root, fc.Data.Images = root, ""
	}
	var err error
	if o.CacheMem, err = train.ParseBytes("--cache-mem / data.cache_mem", fc.Data.CacheMem); err != nil {
		return fmt.Errorf("training config %s: %w", o.ConfigFile, err)
	}
	for i := range fc.Phases {
		if len(o.Phases) > 0 && !contains(o.Phases, fc.Phases[i].Name) {
			continue
		}
		ph := &fc.Phases[i]
		if c.IsSet("epochs") {
			ph.Epochs = c.Float64("epochs")
		}
		if c.IsSet("lr") {
			ph.LR = c.Float64("lr")
		}
		if c.IsSet("batch") {
			ph.Batch = c.Int("batch")
		}
		if !(ph.Epochs > 0) || ph.Batch <= 0 || !(ph.LR > 0) {
			return fmt.Errorf("flags --epochs/--batch/--lr: must be > 0 (phase %s: %g epochs, batch %d, lr %g)", ph.Name, ph.Epochs, ph.Batch, ph.LR)
		}
	}
	o.Config = fc
	if c.Bool("progress") {
		o.Progress = progressBar
	}
	res, err := train.RunPhases(c.Context, o)
	if err != nil {
		return err
	}
	printResults(c.App.Writer, res)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// printResults writes the final evaluation as a markdown table.
func printResults(w io.Writer, res *train.PhasesResult) {
	for _, im := range res.Imported {
		fmt.Fprintf(w, "phase %s started from %s\n", im.Phase, im.Report)
	}
	fmt.Fprintf(w, "evaluated %s on %d validation images in %.1f s\n\n", res.Checkpoint, res.ValImages, res.Seconds)
	fmt.Fprintln(w, "| task | top-1 | top-5 | classes present / all | images | chance (top-1, uniform over present) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, t := range res.SortedTasks() {
		x := res.Tasks[t]
		fmt.Fprintf(w, "| %s | %.3f | %.3f | %d / %d | %d | %.3f |\n", t, x.Top1, x.Top5, x.ClassesPresent, x.Classes, x.Images, 1/float64(max(x.ClassesPresent, 1)))
	}
}

// progressBar is train.PhasesOptions.Progress for a terminal stderr: a bar per phase (images/s,
// loss, validation score, ETA), with only warnings and errors as log lines meanwhile.
func progressBar(ph train.PhaseConfig, steps int) (func(train.StepMetrics), func(train.EvalMetrics), func(), *slog.Logger) {
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil, nil, nil, nil
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
	acc := ""
	step := func(m train.StepMetrics) {
		b.Describe(fmt.Sprintf("phase %s loss %.3f %.1f img/s%s", ph.Name, m.Loss, m.ImagesPerSec, acc))
		_ = b.Set(m.Step)
	}
	eval := func(m train.EvalMetrics) { acc = fmt.Sprintf(" val %.3f", train.Score(m.Accuracy)) }
	done := func() {
		_ = b.Finish()
		fmt.Fprintln(os.Stderr)
	}
	return step, eval, done, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
