package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/preprocess"
	"github.com/artnet/artnet/quantize"
)

func quantizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "quantize",
		Usage: "post-training static int8 quantization (QDQ) of an artnet ONNX model, calibrated on images",
		Description: "artnet quantize --model fp32.onnx --calibrate DATA_DIR [--images N] --out int8.onnx\n" +
			"DATA_DIR is a WikiArt root (its train split is used, minus paths the val split lists) or any folder of images.\n" +
			"Conv weights become int8 per output channel, activations uint8 (or int8) per tensor with calibrated ranges;\n" +
			"the model keeps its interface and metadata (plus " + spec.MetaQuantization + ") and loads in serve/predict/evaluate.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "float32 artnet ONNX `FILE` (artnet export --onnx)"},
			&cli.StringFlag{Name: "calibrate", Usage: "calibration images: a WikiArt root or a folder of images"},
			&cli.IntFlag{Name: "images", Value: 256, Usage: "calibration images, spread evenly over the folder's list (0: all)"},
			&cli.StringFlag{Name: "out", Usage: "output ONNX file (written atomically, checked like an export)"},
			&cli.StringFlag{Name: "method", Value: quantize.DefaultMethod, Usage: "activation ranges: minmax or percentile"},
			&cli.Float64Flag{Name: "percentile", Value: quantize.DefaultPercentile, Usage: "with --method percentile: the percentile kept on each side"},
			&cli.StringFlag{Name: "activations", Value: quantize.DefaultActivations, Usage: "activation type: uint8 or int8"},
			&cli.IntFlag{Name: "weight-bits", Value: quantize.DefaultWeightBits, Usage: "8, or 7 (weights in [-63,63]: avoids int16 saturation of AVX2's u8·s8 products)"},
			&cli.StringFlag{Name: "ops", Value: strings.Join(quantize.DefaultOps, ","), Usage: "op types to quantize, comma-separated, from " + strings.Join(quantize.QuantizableOps(), ",")},
			&cli.IntFlag{Name: "batch", Value: 8, Usage: "calibration images per run"},
			&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads for calibration (0: ORT's default)"},
			&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so"},
		},
		Action: func(c *cli.Context) error {
			start := time.Now()
			in, dir, out := c.String("model"), c.String("calibrate"), c.String("out")
			switch {
			case in == "":
				return errors.New("quantize: --model FILE is required")
			case dir == "":
				return errors.New("quantize: --calibrate DIR is required")
			case out == "":
				return errors.New("quantize: --out FILE is required")
			case c.Int("images") < 0:
				return fmt.Errorf("quantize: flag --images: must be ≥ 0, got %d", c.Int("images"))
			}
			data, err := os.ReadFile(in)
			if err != nil {
				return fmt.Errorf("quantize: %w", err)
			}
			it, err := spec.ValidateONNX(in, data)
			if err != nil {
				return fmt.Errorf("quantize: %w", err)
			}
			files, err := quantize.CalibrationFiles(dir, c.Int("images"))
			if err != nil {
				return fmt.Errorf("quantize: %w", err)
			}
			// Calibration images are held in memory as float32 tensors: refuse sizes that would
			// not fit comfortably (4 GiB).
			if need := float64(len(files)) * float64(3*it.Height*it.Width*4); need > 4<<30 {
				return fmt.Errorf("quantize: flag --images: %d images of 3×%d×%d float32 need %.1f GiB in memory; give fewer (a few hundred calibrate well)",
					len(files), it.Height, it.Width, need/(1<<30))
			}
			batches, n, err := quantize.LoadImages(c.Context, files, preprocess.FromConfig(it.Config), c.Int("batch"))
			if err != nil {
				return fmt.Errorf("quantize: %w", err)
			}
			if err := onnxrt.Init(c.String("ort-lib")); err != nil {
				return err
			}
			var ops []string
			for _, op := range strings.Split(c.String("ops"), ",") {
				if op = strings.TrimSpace(op); op != "" {
					ops = append(ops, op)
				}
			}
			m, rep, err := quantize.Model(c.Context, data, quantize.Options{
				Batches: batches, Source: dir, Method: c.String("method"), Percentile: c.Float64("percentile"),
				Activations: c.String("activations"), WeightBits: c.Int("weight-bits"), Ops: ops, Threads: c.Int("threads"),
			})
			if err != nil {
				return err
			}
			if err := export.WriteModel(out, m); err != nil {
				return err
			}
			slog.Info("quantized", "from", in, "to", out, "calibration_images", n, "ops", rep.Ops, "tensors", rep.Tensors,
				"time", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}
