package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/wikiart"
)

// evaluateCommand is `artnet evaluate`: a model's accuracy, per-class scores and confusion
// matrices on a WikiArt split, with either runtime.
func evaluateCommand() *cli.Command {
	return &cli.Command{
		Name:  "evaluate",
		Usage: "measure a model on a WikiArt split: top-1/top-5 accuracy, per-class precision/recall/F1, confusion matrices",
		Description: "Runs every image of the split that is on disk (rows without an image are skipped and counted)\n" +
			"through ONNX Runtime (--model FILE.onnx; without it the built-in model) or GoMLX (--checkpoint DIR),\n" +
			"and writes summary.json, confusion_<task>.csv and confusion_<task>.png into --out.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Usage: "GoMLX checkpoint directory (or a training output folder), run in GoMLX"},
			&cli.StringSliceFlag{Name: "data", Usage: "WikiArt folder: the split CSVs and class lists, images in DATA/images (see --images); repeat for extra roots (each reported alone in OUT/rootN, then the union in OUT); default: $ARTNET_DATA, else data/wikiart"},
			&cli.StringFlag{Name: "images", Usage: "image root of the first --data, if not DATA/images"},
			&cli.StringFlag{Name: "split", Value: "val", Usage: "train or val"},
			&cli.StringFlag{Name: "out", Value: "eval", Usage: "output folder for summary.json and the confusion matrices"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per forward pass"},
			&cli.BoolFlag{Name: "jpeg-draft", Usage: "decode large JPEGs in draft mode as `artnet serve --jpeg-draft` does (to measure its effect on accuracy)"},
			&cli.IntFlag{Name: "limit", Usage: "evaluate only N samples, spread evenly over the split (deterministic; 0: all)"},
		}, command.RuntimeFlags()...),
		Action: func(c *cli.Context) error {
			model, ckpt := c.String("model"), c.String("checkpoint")
			if model != "" && ckpt != "" {
				return fmt.Errorf("evaluate: give --model or --checkpoint, not both")
			}
			split := c.String("split")
			if split != "train" && split != "val" {
				return fmt.Errorf("evaluate: flag --split: %q is not train or val", split)
			}
			if c.Int("batch") < 1 {
				return fmt.Errorf("evaluate: flag --batch: must be ≥ 1, got %d", c.Int("batch"))
			}
			if c.Int("limit") < 0 {
				return fmt.Errorf("evaluate: flag --limit: must be ≥ 0, got %d", c.Int("limit"))
			}
			roots, data, err := loadRoots(c.StringSlice("data"), c.String("images"))
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			s := roots.Val
			ranges := roots.ValFrom
			if split == "train" {
				s, ranges = roots.Train, roots.TrainFrom
			}
			missingIn := make([]int, len(roots.Reports)) // per root
			missing := 0
			for i, rep := range roots.Reports {
				for t := range wikiart.Tasks {
					if f := rep.File(wikiart.FileName(t, split)); f != nil {
						missingIn[i] += f.MissingImage
					}
				}
				missing += missingIn[i]
			}
			if len(s.Samples) == 0 {
				return fmt.Errorf("evaluate: split %s of %s has no sample with an image on disk (%d rows without an image)", split, strings.Join(data, ", "), missing)
			}
			slog.Info("evaluating", "split", split, "samples", len(evaluate.Subsample(s.Samples, c.Int("limit"))), "rows_without_image", missing)

			var p predict.Predictor
			rt, src := "onnx", model
			switch {
			case ckpt != "":
				rt, src = "gomlx", ckpt
				p, err = openGoMLX(ckpt)
			case model == "":
				src = defaultmodel.Name // OpenModel opens the built-in model without --model
				fallthrough
			default:
				p, err = command.OpenModel(c)
			}
			if err != nil {
				return err
			}
			defer p.Close()
			images := roots.Reports[0].Images
			run := func(samples []wikiart.Sample, data, out string, missing int) error {
				samples = evaluate.Subsample(samples, c.Int("limit"))
				sum, err := evaluate.Run(c.Context, p, samples, evaluate.Options{Images: images, Classes: roots.Classes, Batch: c.Int("batch"), JPEGDraft: c.Bool("jpeg-draft")})
				if err != nil {
					return err
				}
				sum.Model, sum.Runtime, sum.Data, sum.Split = src, rt, data, split
				sum.MissingImages, sum.Limit = missing, c.Int("limit")
				if err := evaluate.WriteReport(out, sum); err != nil {
					return err
				}
				printSummary(c.App.Writer, sum, out)
				return nil
			}
			if len(data) > 1 { // each root alone (in out/root<N>), then the union (in out)
				for i, r := range ranges {
					if err := run(s.Samples[r[0]:r[1]], data[i], filepath.Join(c.String("out"), fmt.Sprintf("root%d", i+1)), missingIn[i]); err != nil {
						return err
					}
				}
			}
			return run(s.Samples, strings.Join(data, "+"), c.String("out"), missing)
		},
	}
}

// loadRoots reads the data roots of --data (repeatable: the first is the main root, the others
// extra roots, see wikiart.LoadRoots; none → $ARTNET_DATA, else data/wikiart). images overrides
// the first root's image folder. It returns the roots and their folders in order.
func loadRoots(flags []string, images string) (*wikiart.Roots, []string, error) {
	data, from := wikiart.ResolveRoot(first(flags), "")
	dirs := append([]string{data}, rest(flags)...)
	opts := []wikiart.Options{{Root: data, Images: images}}
	for _, x := range rest(flags) {
		opts = append(opts, wikiart.Options{Root: x})
	}
	roots, err := wikiart.LoadRoots(opts)
	if err != nil {
		if from == "default" {
			return nil, nil, fmt.Errorf("%v (the default data folder; give --data DIR or set %s)", err, wikiart.EnvData)
		}
		return nil, nil, err
	}
	for i, rep := range roots.Reports {
		if !rep.ImagesChecked {
			return nil, nil, fmt.Errorf("no image folder: %s does not exist (give --images, or %s)", filepath.Join(dirs[i], "images"), wikiart.NoImagesHint(dirs[i]))
		}
	}
	return roots, dirs, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func rest(s []string) []string {
	if len(s) < 2 {
		return nil
	}
	return s[1:]
}
func printSummary(w io.Writer, s *evaluate.Summary, out string) {
	fmt.Fprintf(w, "%s (%s) on %s/%s: %d samples evaluated, %d undecodable, %d rows without an image\n",
		s.Model, s.Runtime, s.Data, s.Split, s.Evaluated, s.Undecodable, s.MissingImages)
	fmt.Fprintf(w, "%-7s %8s %7s %7s %9s %9s %7s %7s\n", "task", "samples", "top-1", "top-k", "bal-acc", "macro-F1", "ECE", "absent")
	for _, t := range s.Tasks {
		fmt.Fprintf(w, "%-7s %8d %6.2f%% %6.2f%% %8.2f%% %9.4f %7.4f %7d\n", t.Task, t.Samples, 100*t.Top1, 100*t.TopK, 100*t.MacroRecall, t.MacroF1, t.ECE, len(t.Absent))
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(out, evaluate.SummaryFile))
}
