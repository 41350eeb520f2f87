package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/internal/atomicfile"
)

// plotCommand is `artnet plot`: training curves from a run's metrics.jsonl to a PNG.
func plotCommand() *cli.Command {
	return &cli.Command{
		Name:  "plot",
		Usage: "draw training curves (loss total and per task, validation accuracy) from metrics.jsonl to a PNG",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "metrics", Usage: "a training run's metrics.jsonl (OUT/metrics.jsonl)"},
			&cli.StringFlag{Name: "out", Value: "curves.png", Usage: "PNG file to write"},
			&cli.IntFlag{Name: "width", Value: 1200, Usage: "image width in pixels"},
			&cli.IntFlag{Name: "height", Value: 900, Usage: "image height in pixels"},
		},
		Action: func(c *cli.Context) error {
			if c.String("metrics") == "" {
				return fmt.Errorf("plot: flag --metrics: give a training run's metrics.jsonl")
			}
			if w, h := c.Int("width"), c.Int("height"); w < 200 || h < 200 || w > 10000 || h > 10000 {
				return fmt.Errorf("plot: flags --width/--height: %d×%d, want 200…10000 pixels each", w, h)
			}
			curves, err := evaluate.ReadCurves(c.String("metrics"))
			if err != nil {
				return err
			}
			title := fmt.Sprintf("training loss (%s)", filepath.Base(filepath.Dir(c.String("metrics"))))
			png, err := evaluate.PlotCurves(curves, title, c.Int("width"), c.Int("height"))
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(c.String("out"), png, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %d training steps, %d evaluations\n", c.String("out"), len(curves.Steps), len(curves.EvalStep))
			return nil
		},
	}
}
