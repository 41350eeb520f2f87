package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/server"
)

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "predict style, genre and artist of images",
		ArgsUsage: "IMAGE...",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Usage: "GoMLX checkpoint directory (with --runtime gomlx)"},
			&cli.StringFlag{Name: "runtime", Value: "onnx", Usage: "onnx (ONNX Runtime) or gomlx"},
			&cli.IntFlag{Name: "topk", Value: 1, Usage: "also list the k most probable classes per task"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per image on stdout"},
			&cli.BoolFlag{Name: "attention", Usage: "include the attention weights in --json output"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per forward pass"},
			&cli.StringFlag{Name: "visualize-attention", Usage: "write the attention heatmap over the painting: a PNG `FILE` for one image, or a folder (FOLDER/<name>.heatmap.png) for several"},
		}, server.RuntimeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("predict: no image given (usage: artnet predict --model FILE.onnx IMAGE...)")
			}
			if c.Int("batch") < 1 {
				return fmt.Errorf("flag --batch: must be ≥ 1, got %d", c.Int("batch"))
			}
			if c.Int("topk") < 1 {
				return fmt.Errorf("flag --topk: must be ≥ 1, got %d", c.Int("topk"))
			}
			p, err := openPredictor(c)
			if err != nil {
				return err
			}
			defer p.Close()
			o := predict.FilesOptions{TopK: c.Int("topk"), JSON: c.Bool("json"), Attention: c.Bool("attention"), Batch: c.Int("batch")}
			if v := c.String("visualize-attention"); v != "" {
				if st, err := os.Stat(v); (err == nil && st.IsDir()) || c.NArg() > 1 || !strings.EqualFold(filepath.Ext(v), ".png") {
					if err := os.MkdirAll(v, 0o755); err != nil {
						return fmt.Errorf("flag --visualize-attention: %w", err)
					}
					o.HeatmapDir = v
				} else {
					o.HeatmapFile = v
				}
			}
			err = predict.Files(c.Context, p, c.Args().Slice(), o, c.App.Writer, c.App.ErrWriter)
			if errors.Is(err, predict.ErrImagesFailed) {
				return &exitError{code: 1, msg: err.Error()}
			}
			return err
		},
	}
}

func openPredictor(c *cli.Context) (predict.Predictor, error) {
	switch c.String("runtime") {
	case "onnx":
		return server.OpenModel(c)
	case "gomlx":
		if c.String("checkpoint") == "" {
			return nil, fmt.Errorf("predict: --checkpoint DIR is required with --runtime gomlx")
		}
		return openGoMLX(c.String("checkpoint"))
	default:
		return nil, fmt.Errorf("flag --runtime: %q is not onnx or gomlx", c.String("runtime"))
	}
}
