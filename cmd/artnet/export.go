package main

import (
	"errors"
	"log/slog"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/train"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "export a trained checkpoint, or PyTorch weights, to ONNX (opset 17, symbolic batch)",
		Description: "From a checkpoint:        artnet export --checkpoint DIR --onnx model.onnx\n" +
			"Straight from weights:    artnet export --variant b4 --weights FILE.safetensors|.pth --onnx model.onnx\n" +
			"(--weights takes what `artnet import` takes; see its help for naming schemes and the tf_efficientnet caveat.)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Usage: "checkpoint directory, or a training output directory (its newest good checkpoint is used)"},
			&cli.StringFlag{Name: "weights", Usage: "PyTorch weights (safetensors or .pth/.pt) to export without a training run (instead of --checkpoint)"},
			&cli.StringFlag{Name: "variant", Usage: "with --weights: EfficientNet variant b0..b4 (default b4)"},
			&cli.StringFlag{Name: "model-config", Usage: "with --weights: JSON model configuration (spec.Config)"},
			&cli.IntFlag{Name: "image-size", Usage: "input size H = W; with --checkpoint, a test resolution other than the training one (the resize keeps the checkpoint's resize/crop ratio; default: the checkpoint's size)"},
			&cli.StringFlag{Name: "classes-from", Usage: "with --weights: folder with style_class.txt, genre_class.txt, artist_class.txt"},
			&cli.BoolFlag{Name: "allow-partial", Usage: "with --weights: accept missing/extra tensors (see artnet import)"},
			&cli.StringFlag{Name: "onnx", Usage: "output ONNX file (written atomically)"},
			&cli.StringFlag{Name: "triton", Usage: "also (or instead) write a Triton model repository into this folder: artnet/config.pbtxt, label files, artnet/1/model.onnx"},
			&cli.IntFlag{Name: "triton-max-batch", Value: 32, Usage: "Triton max_batch_size"},
			&cli.DurationFlag{Name: "triton-max-delay", Value: 5 * time.Millisecond, Usage: "Triton dynamic batching max queue delay"},
			&cli.BoolFlag{Name: "triton-gpu", Usage: "Triton instance_group KIND_GPU (default KIND_CPU)"},
			&cli.BoolFlag{Name: "fp16", Usage: "weights and activations in float16 (for TensorRT and the CUDA provider); the image input and the outputs stay float32"},
		},
		Action: func(c *cli.Context) error {
			start := time.Now()
			if c.String("onnx") == "" && c.String("triton") == "" {
				return errors.New("export: --onnx FILE or --triton DIR is required")
			}
			var (
				mctx   *context.Context
				cfg    spec.Config
				source string
				err    error
			)
			switch ck, w := c.String("checkpoint"), c.String("weights"); {
			case ck != "" && w != "":
				return errors.New("export: use either --checkpoint or --weights, not both")
			case ck != "":
				if source, err = train.ResolveCheckpoint(ck); err != nil {
					return err
				}
				if mctx, cfg, err = models.LoadCheckpoint(source); err != nil {
					return err
				}
				if err = setImageSize(&cfg, c.Int("image-size")); err != nil {
					return err
				}
			case w != "":
				if cfg, err = importConfig(c.String("variant"), c.String("model-config"), c.Int("image-size"), c.String("classes-from")); err != nil {
					return err
				}
				if mctx, err = loadWeights(w, cfg, c.Bool("allow-partial")); err != nil {
					return err
				}
				source = w
			default:
				return errors.New("export: --checkpoint DIR or --weights FILE (safetensors or .pth) is required")
			}
			m, err := export.Model(mctx, cfg)
			if err != nil {
				return err
			}
			if c.Bool("fp16") {
				if m, err = export.Float16(m); err != nil {
					return err
				}
			}
			if p := c.String("onnx"); p != "" {
				if err := export.WriteModel(p, m); err != nil {
					return err // "export: write FILE: …"
				}
			}
			if dir := c.String("triton"); dir != "" {
				if err := export.WriteTriton(dir, m, cfg, export.TritonOptions{
					MaxBatch: c.Int("triton-max-batch"), MaxDelay: c.Duration("triton-max-delay"), GPU: c.Bool("triton-gpu"),
				}); err != nil {
					return err
				}
			}
			slog.Info("exported", "from", source, "onnx", c.String("onnx"), "triton", c.String("triton"), "variant", cfg.Variant,
				"nodes", len(m.GetGraph().GetNode()), "time", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}
