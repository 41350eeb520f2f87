package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "export a trained checkpoint to ONNX (opset 17, symbolic batch)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "checkpoint directory written by artnet train (its newest good checkpoint is used)"},
			&cli.StringFlag{Name: "onnx", Required: true, Usage: "output ONNX file (written atomically)"},
		},
		Action: func(c *cli.Context) error {
			start := time.Now()
			dir, err := resolveCheckpoint(c.String("checkpoint"))
			if err != nil {
				return err
			}
			mctx, cfg, err := models.LoadCheckpoint(dir)
			if err != nil {
				return err
			}
			m, err := export.Model(mctx, cfg)
			if err != nil {
				return err
			}
			if err := export.WriteFile(c.String("onnx"), m); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			slog.Info("exported", "checkpoint", dir, "onnx", c.String("onnx"), "nodes", len(m.GetGraph().GetNode()), "time", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}
