package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/train"
)

// wikiartField names, for a flag only --synthetic training reads, the configuration field that
// says the same for WikiArt training.
var wikiartField = map[string]string{
	"model-config": "model.<field>", "steps": "phases.<name>.epochs", "weight-decay": "train.weight_decay",
	"warmup": "train.warmup_epochs",
}

// refuseOtherMode refuses, with one line naming it, a flag given on the command line that the
// chosen mode (WikiArt with --config, or --synthetic) does not read: nothing is silently ignored.
func refuseOtherMode(c *cli.Context) error {
	synthetic := c.Bool("synthetic")
	if synthetic {
		for _, f := range wikiartFlags() {
			if name := f.Names()[0]; c.IsSet(name) {
				return fmt.Errorf("flag --%s: not read by --synthetic training (it configures WikiArt training)", name)
			}
		}
		return nil
	}
	for _, f := range syntheticFlags() {
		name := f.Names()[0]
		if !c.IsSet(name) {
			continue
		}
		if field := wikiartField[name]; field != "" {
			return fmt.Errorf("flag --%s: read by --synthetic training only; for WikiArt training set %s in the configuration (or --set %s=…)", name, field, field)
		}
		return fmt.Errorf("flag --%s: read by --synthetic training only, not by WikiArt training (--config)", name)
	}
	return nil
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train DeepArtNet in GoMLX on WikiArt (--config, phases) or on synthetic paintings (--synthetic)",
		ArgsUsage: "[--resume CHECKPOINT]",
		Flags:     slices.Concat(commonTrainFlags(), syntheticFlags(), wikiartFlags()),
		Action:    trainAction,
	}
}

// trainAction refuses the flags the chosen kind of training does not read, then trains.
func trainAction(c *cli.Context) error {
	if err := refuseOtherMode(c); err != nil {
		return err
	}
	if c.Bool("synthetic") {
		return trainSynthetic(c)
	}
	return trainWikiArt(c)
}

// commonTrainFlags are the flags both kinds of training read.
func commonTrainFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "synthetic", Usage: "train on generated images whose style/genre/artist labels are palette/texture/layout"},
		&cli.StringFlag{Name: "out", Value: "out/train", Usage: "output directory: checkpoints (ckpt-<step>), latest, metrics.jsonl, samples/"},
		&cli.IntFlag{Name: "batch", Value: 16, Usage: "batch size (WikiArt: overrides the selected phases')"},
		&cli.Float64Flag{Name: "lr", Value: 3e-3, Usage: "peak learning rate, AdamW (WikiArt: overrides the selected phases')"},
		&cli.Int64Flag{Name: "seed", Value: 1},
		&cli.BoolFlag{Name: "resume", Usage: "continue from the newest checkpoint in --out that loads; WikiArt: --resume CHECKPOINT (or RUN_FOLDER) as the last argument takes the run's own options (run.json) and starts --phase from CHECKPOINT"},
		&cli.StringFlag{Name: "pretrained", Usage: "start from PyTorch weights (safetensors or .pth/.pt, e.g. torchvision's efficientnet_bN_*.pth from ~/.cache/torch/hub/checkpoints): a whole DeepArtNet or a backbone alone, named as artnet import accepts; WikiArt: the first phase (one without an earlier phase in --out); overrides train.pretrained"},
		&cli.BoolFlag{Name: "allow-partial", Usage: "with --pretrained: accept a file that lacks some model tensors or holds extra ones (as artnet import)"},
		&cli.StringFlag{Name: "backend", Usage: "GoMLX backend: go (CPU, default) or xla:cuda (needs -tags xla and a PJRT plugin); default $GOMLX_BACKEND"},
	}
}

// syntheticFlags are the flags only --synthetic training reads.
func syntheticFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model-config", Usage: "JSON model configuration (spec.Config); default: the tiny CPU configuration"},
		&cli.IntFlag{Name: "steps", Value: 300, Usage: "global step to train up to (--synthetic)"},
		&cli.Float64Flag{Name: "weight-decay", Value: 1e-4},
		&cli.IntFlag{Name: "warmup", Value: 10, Usage: "warm-up steps before the cosine decay"},
		&cli.IntFlag{Name: "checkpoint-every", Value: 50},
		&cli.IntFlag{Name: "eval-every", Value: 0, Usage: "evaluate every so many steps (0: at the end)"},
		&cli.IntFlag{Name: "train-size", Value: 4096, Usage: "synthetic training images"},
		&cli.IntFlag{Name: "val-size", Value: 256, Usage: "synthetic validation images"},
		&cli.StringFlag{Name: "classes", Value: "27,10,23", Usage: "synthetic class counts style,genre,artist"},
		&cli.IntFlag{Name: "samples", Value: 4, Usage: "write this many labelled synthetic validation images to OUT/samples (for predict)"},
	}
}

// trainSynthetic parses the flags of `artnet train --synthetic` and runs train.Run on generated
// paintings.
func trainSynthetic(c *cli.Context) error {
	var n [3]int
	if _, err := fmt.Sscanf(strings.ReplaceAll(c.String("classes"), " ", ""), "%d,%d,%d", &n[0], &n[1], &n[2]); err != nil {
		return fmt.Errorf("flag --classes: want three counts like 27,10,23, got %q", c.String("classes"))
	}
	cfg := train.SyntheticConfig(n[0], n[1], n[2])
	if p := c.String("model-config"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("flag --model-config: %w", err)
		}
		if cfg, err = spec.ParseJSON(b); err != nil {
			return fmt.Errorf("model config %s: %w", p, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if c.Int("train-size") < 1 || c.Int("val-size") < 1 {
		return errors.New("flags --train-size and --val-size: must be ≥ 1")
	}
	out := c.String("out")
	seed := c.Int64("seed")
	trainSet := train.NewSynthetic(cfg, c.Int("train-size"), seed)
	valSet := train.NewSynthetic(cfg, c.Int("val-size"), seed+1_000_003)
	if err := train.WriteSyntheticSamples(out, cfg, c.Int("samples"), seed); err != nil {
		return err
	}
	res, err := train.Run(c.Context, train.Options{
		Config: cfg, OutDir: out, Steps: c.Int("steps"), Batch: c.Int("batch"),
		LR: c.Float64("lr"), WeightDecay: c.Float64("weight-decay"), WarmupSteps: c.Int("warmup"),
		CheckpointEvery: c.Int("checkpoint-every"), EvalEvery: c.Int("eval-every"),
		Seed: seed, Resume: c.Bool("resume"), Backend: c.String("backend"),
		InitFrom: c.String("pretrained"), AllowPartial: c.Bool("allow-partial"),
	}, trainSet, valSet, slog.Default())
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(res.ValAccuracy))
	for k := range res.ValAccuracy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var acc []string
	for _, k := range keys {
		acc = append(acc, fmt.Sprintf("%s=%.3f (chance %.3f)", k, res.ValAccuracy[k], 1/float64(cfg.NumClasses(k))))
	}
	if res.Imported != nil {
		fmt.Fprintf(c.App.Writer, "started from %s\n", res.Imported)
	}
	fmt.Fprintf(c.App.Writer, "trained to step %d, loss %.4f, checkpoint %s\nvalidation accuracy: %s\n",
		res.Step, res.Loss, res.CheckpointDir, strings.Join(acc, ", "))
	return nil
}
