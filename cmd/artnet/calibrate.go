package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/calibrate"
	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/models/spec"
)

// calibrateCommand is `artnet calibrate`: fit one softmax temperature per task on the training
// side of the data and write them into the ONNX model (package calibrate), reporting the
// expected calibration error on the validation images before and after.
func calibrateCommand() *cli.Command {
	return &cli.Command{
		Name:      "calibrate",
		Usage:     "fit a softmax temperature per task on training images, so that a confidence of 87% is right about 87% of the time",
		UsageText: "artnet calibrate --model in.onnx --data ROOT [--data EXTRA …] [--images-per-fit N] --out calibrated.onnx",
		Description: "Runs --fit-images training images (spread evenly over the train split of every --data root, evaluation\n" +
			"transform) through the model, fits per task the temperature T minimizing the negative log-likelihood, and\n" +
			"writes a model whose outputs are softmax(logits/T) (in the graph, so every runtime applies it; the metadata\n" +
			"key artnet.temperature records it). Prints T and the expected calibration error (ECE) of the top-1\n" +
			"confidences on the validation images before and after. Rankings (top-1/top-5) do not change.",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "data", Usage: "WikiArt folder(s), as for evaluate (repeat for extra roots)"},
			&cli.IntFlag{Name: "fit-images", Value: 4000, Usage: "training images the temperatures are fitted on (0: all)"},
			&cli.StringFlag{Name: "out", Usage: "the calibrated ONNX model to write (required; may equal --model)"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per forward pass"},
		}, command.RuntimeFlags()...),
		Action: func(c *cli.Context) error {
			if c.String("out") == "" {
				return fmt.Errorf("calibrate: flag --out: required (the calibrated model's file)")
			}
			if c.String("model") == "" {
				return fmt.Errorf("calibrate: flag --model: required (the ONNX model to calibrate)")
			}
			if c.Int("fit-images") < 0 {
				return fmt.Errorf("calibrate: flag --fit-images: must be ≥ 0, got %d", c.Int("fit-images"))
			}
			src, err := os.ReadFile(c.String("model"))
			if err != nil {
				return fmt.Errorf("calibrate: %w", err)
			}
			roots, data, err := loadRoots(c.StringSlice("data"), "")
			if err != nil {
				return fmt.Errorf("calibrate: %w", err)
			}
			p, err := command.OpenModel(c)
			if err != nil {
				return err
			}
			defer p.Close()
			o := evaluate.Options{Images: roots.Reports[0].Images, Classes: roots.Classes, Batch: c.Int("batch")}
			slog.Info("calibrate: fitting on training images", "data", strings.Join(data, "+"), "images", min(c.Int("fit-images"), len(roots.Train.Samples)))
			fit, err := evaluate.Run(c.Context, p, evaluate.Subsample(roots.Train.Samples, c.Int("fit-images")), o)
			if err != nil {
				return err
			}
			slog.Info("calibrate: measuring on validation images", "images", len(roots.Val.Samples))
			val, err := evaluate.Run(c.Context, p, roots.Val.Samples, o)
			if err != nil {
				return err
			}
			temps := map[string]float64{}
			var rows []calibrationRow
			for _, task := range spec.Tasks {
				f, v := fit.Task(task), val.Task(task)
				if f == nil || f.Rows.Len() == 0 {
					slog.Warn("calibrate: no labelled training image for the task; left as it is", "task", task)
					continue
				}
				t, err := f.Rows.Fit()
				if err != nil {
					return err
				}
				temps[task] = t
				rows = append(rows, calibrationRow{task: task, t: t, fitN: f.Rows.Len(), valN: v.Rows.Len(),
					fitBefore: f.Rows.ECE(1, calibrate.DefaultBins), fitAfter: f.Rows.ECE(t, calibrate.DefaultBins),
					before: v.Rows.ECE(1, calibrate.DefaultBins), after: v.Rows.ECE(t, calibrate.DefaultBins),
					nllBefore: v.Rows.NLL(1), nllAfter: v.Rows.NLL(t)})
			}
			out, err := calibrate.Apply(c.String("model"), src, temps)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(c.String("out"), out, 0o644); err != nil {
				return fmt.Errorf("calibrate: %w", err)
			}
			printCalibration(c.App.Writer, rows, c.String("out"))
			return nil
		},
	}
}

type calibrationRow struct {
	task                string
	t                   float64
	fitN, valN          int
	fitBefore, fitAfter float64
	before, after       float64
	nllBefore, nllAfter float64
}

func printCalibration(w io.Writer, rows []calibrationRow, out string) {
	fmt.Fprintln(w, "| task | temperature | fitted on (train) | ECE train before → after | val images | ECE val before → after | NLL val before → after |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %.3f | %d | %.4f → %.4f | %d | %.4f → %.4f | %.4f → %.4f |\n",
			r.task, r.t, r.fitN, r.fitBefore, r.fitAfter, r.valN, r.before, r.after, r.nllBefore, r.nllAfter)
	}
	fmt.Fprintf(w, "wrote %s\n", out)
}
