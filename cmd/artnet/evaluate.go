package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

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
			&cli.StringFlag{Name: "data", Usage: "WikiArt folder: the split CSVs and class lists, images in DATA/images (see --images); default: $ARTNET_DATA, else data/wikiart"},
			&cli.StringFlag{Name: "images", Usage: "image root, if not DATA/images"},
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
			data, from := wikiart.ResolveRoot(c.String("data"), "")
			train, val, classes, rep, err := wikiart.Load(wikiart.Options{Root: data, Images: c.String("images")})
			if err != nil {
				if from == "default" {
					return fmt.Errorf("evaluate: %v (the default data folder; give --data DIR or set %s)", err, wikiart.EnvData)
				}
				return err
			}
			if !rep.ImagesChecked {
				return fmt.Errorf("evaluate: no image folder: %s does not exist (give --images, or %s)", filepath.Join(data, "images"), wikiart.NoImagesHint(data))
			}
			s := val
			if split == "train" {
				s = train
			}
			missing := 0
			for t := range wikiart.Tasks {
				if f := rep.File(wikiart.FileName(t, split)); f != nil {
					missing += f.MissingImage
				}
			}
			samples := evaluate.Subsample(s.Samples, c.Int("limit"))
			if len(samples) == 0 {
				return fmt.Errorf("evaluate: split %s of %s has no sample with an image on disk (%d rows without an image)", split, data, missing)
			}
			slog.Info("evaluating", "split", split, "samples", len(samples), "rows_without_image", missing)

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
			images := c.String("images")
			if images == "" {
				images = filepath.Join(data, "images")
			}
			sum, err := evaluate.Run(c.Context, p, samples, evaluate.Options{Images: images, Classes: classes, Batch: c.Int("batch"), JPEGDraft: c.Bool("jpeg-draft")})
			if err != nil {
				return err
			}
			sum.Model, sum.Runtime, sum.Data, sum.Split = src, rt, data, split
			sum.MissingImages, sum.Limit = missing, c.Int("limit")
			if err := evaluate.WriteReport(c.String("out"), sum); err != nil {
				return err
			}
			printSummary(c.App.Writer, sum, c.String("out"))
			return nil
		},
	}
}

func printSummary(w io.Writer, s *evaluate.Summary, out string) {
	fmt.Fprintf(w, "%s (%s) on %s/%s: %d samples evaluated, %d undecodable, %d rows without an image\n",
		s.Model, s.Runtime, s.Data, s.Split, s.Evaluated, s.Undecodable, s.MissingImages)
	fmt.Fprintf(w, "%-7s %8s %7s %7s %9s %9s %7s\n", "task", "samples", "top-1", "top-k", "macro-F1", "weight-F1", "absent")
	for _, t := range s.Tasks {
		fmt.Fprintf(w, "%-7s %8d %6.2f%% %6.2f%% %9.4f %9.4f %7d\n", t.Task, t.Samples, 100*t.Top1, 100*t.TopK, t.MacroF1, t.WeightedF1, len(t.Absent))
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(out, evaluate.SummaryFile))
}
