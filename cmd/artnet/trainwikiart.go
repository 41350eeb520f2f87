package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/train"
)

// wikiartFlags are the flags of `artnet train` that only WikiArt training reads.
func wikiartFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Value: train.DefaultConfigFile, Usage: "training configuration (YAML; see configs/base.yaml); with --resume, default: the run's own run.json"},
		&cli.StringFlag{Name: "phase", Value: "all", Usage: "phase to train: a phase name from the config (1, 2, 3) or all"},
		&cli.Float64Flag{Name: "epochs", Usage: "override the epochs of the selected phase(s)"},
		&cli.GenericFlag{Name: "data", Value: &repeated{}, Usage: "WikiArt folder (CSV splits, images/); default: $ARTNET_DATA, else the config's data.root (data/wikiart); again for more roots (data.extra)"},
		&cli.GenericFlag{Name: "set", Value: &repeated{}, Usage: "override a field of the configuration, `path=value` (train.weight_decay=0.05, data.cache_mem=2GiB, phases.2.lr=1e-4, phases.*.batch=32); repeatable, applied after the other flags"},
		&cli.BoolFlag{Name: "strict", Usage: "refuse CSV rows whose image is missing instead of skipping them"},
		&cli.IntFlag{Name: "workers", Usage: "image decoding goroutines (0: the config's, or all cores)"},
		&cli.StringFlag{Name: "cache-mem", Usage: "decoded-image cache budget, e.g. 2GiB (default: the config's data.cache_mem; 0: decode every image each time)"},
		&cli.IntFlag{Name: "prefetch", Value: 2, Usage: "loaded batches that may wait ahead of the training step"},
		&cli.StringFlag{Name: "from", Usage: "checkpoint the (first) selected phase starts from, e.g. out/run/phase1/best (default: the previous phase's best in --out)"},
		&cli.DurationFlag{Name: "max-time", Usage: "stop training after this wall-clock time (checkpoint saved), then evaluate the best checkpoint (0: no limit)"},
		&cli.BoolFlag{Name: "progress", Value: true, Usage: "a progress bar when stderr is a terminal (plain log lines otherwise)"},
	}
}

// repeated is a flag that may be given several times (--data, --set); unlike cli's string
// slices it never splits a value at commas.
type repeated struct{ v []string }

func (r *repeated) Set(s string) error { r.v = append(r.v, s); return nil }
func (r *repeated) String() string     { return strings.Join(r.v, " ") }

func repeatedFlag(c *cli.Context, name string) []string {
	if r, ok := c.Generic(name).(*repeated); ok {
		return r.v
	}
	return nil
}

// trainWikiArt parses the flags of `artnet train` (WikiArt) into a train.Request; train.Plan
// decides the rest. `--resume [CHECKPOINT]` takes the checkpoint last, as the seed's scripts
// write it.
func trainWikiArt(c *cli.Context) error {
	r := train.Request{Out: flagIfSet(c, "out"), DefaultOut: c.String("out"), Phase: c.String("phase"),
		Resume: c.Bool("resume"), From: c.String("from"), Data: repeatedFlag(c, "data"), Set: repeatedFlag(c, "set"),
		MaxTime: c.Duration("max-time"), Prefetch: c.Int("prefetch"), Log: slog.Default()}
	r.ConfigFile = flagIfSet(c, "config")
	switch args := c.Args().Slice(); {
	case len(args) == 1 && r.Resume:
		r.ResumeFrom = args[0]
	case len(args) > 1 && r.Resume:
		return fmt.Errorf("train: %q after --resume %s is not read as a flag: put the checkpoint last", args[1], args[0])
	case len(args) > 0:
		return fmt.Errorf("train: unexpected argument %q (a checkpoint goes last, after --resume; other flags before it)", args[0])
	}
	ov := &r.Overrides
	ov.Seed = flagPtr(c, "seed", c.Int64)
	ov.Backend = flagPtr(c, "backend", c.String)
	ov.Pretrained = flagPtr(c, "pretrained", c.String)
	ov.Workers = flagPtr(c, "workers", c.Int)
	ov.CacheMem = flagPtr(c, "cache-mem", c.String)
	ov.Epochs = flagPtr(c, "epochs", c.Float64)
	ov.LR = flagPtr(c, "lr", c.Float64)
	ov.Batch = flagPtr(c, "batch", c.Int)
	ov.AllowPartial, ov.Strict = c.Bool("allow-partial"), c.Bool("strict")
	if c.Bool("progress") {
		r.Progress = progressBar
	}
	o, err := train.Plan(r)
	if err != nil {
		return err
	}
	res, err := train.RunPhases(c.Context, o)
	if err != nil {
		return err
	}
	printResults(c.App.Writer, res)
	return nil
}

// flagPtr is the flag's value when the command line gives it, else nil (not overridden).
func flagPtr[T any](c *cli.Context, name string, get func(string) T) *T {
	if !c.IsSet(name) {
		return nil
	}
	v := get(name)
	return &v
}

// flagIfSet is the flag's value when the command line gives it, else "".
func flagIfSet(c *cli.Context, name string) string {
	if c.IsSet(name) {
		return c.String(name)
	}
	return ""
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
