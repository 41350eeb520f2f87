package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
	ortrt "github.com/artnet/artnet/runtime"
)

func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime, then system paths)"},
		&cli.StringFlag{Name: "provider", Value: "cpu", Usage: "ONNX Runtime execution providers in order: cpu, cuda, tensorrt; e.g. cuda,cpu falls back to CPU"},
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: ORT's default)"},
	}
}

func openONNX(c *cli.Context, path string) (*ortrt.Model, error) {
	var providers []string
	for _, p := range strings.Split(c.String("provider"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			providers = append(providers, p)
		}
	}
	return ortrt.Open(path, ortrt.Options{
		LibraryPath:    c.String("ort-lib"),
		Providers:      providers,
		IntraOpThreads: c.Int("threads"),
	})
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "predict style, genre and artist of images",
		ArgsUsage: "IMAGE...",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "exported ONNX model (artnet export --onnx)"},
			&cli.StringFlag{Name: "checkpoint", Usage: "GoMLX checkpoint directory (with --runtime gomlx)"},
			&cli.StringFlag{Name: "runtime", Value: "onnx", Usage: "onnx (ONNX Runtime) or gomlx"},
			&cli.IntFlag{Name: "topk", Value: 1, Usage: "also list the k most probable classes per task"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per image on stdout"},
			&cli.BoolFlag{Name: "attention", Usage: "include the attention weights in --json output"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per forward pass"},
		}, runtimeFlags()...),
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
			return predictImages(c.Context, p, c.Args().Slice(), predictOptions{
				topK: c.Int("topk"), json: c.Bool("json"), attention: c.Bool("attention"), batch: c.Int("batch"),
			}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func openPredictor(c *cli.Context) (predict.Predictor, error) {
	switch c.String("runtime") {
	case "onnx":
		if c.String("model") == "" {
			return nil, fmt.Errorf("predict: --model FILE.onnx is required with --runtime onnx (make one with: artnet export --checkpoint DIR --onnx FILE.onnx)")
		}
		return openONNX(c, c.String("model"))
	case "gomlx":
		if c.String("checkpoint") == "" {
			return nil, fmt.Errorf("predict: --checkpoint DIR is required with --runtime gomlx")
		}
		return openGoMLX(c.String("checkpoint"))
	default:
		return nil, fmt.Errorf("flag --runtime: %q is not onnx or gomlx", c.String("runtime"))
	}
}

type predictOptions struct {
	topK      int
	json      bool
	attention bool
	batch     int
}

// predictImages decodes every image, runs them in batches and prints one result per image.
// A bad image gets one line on stderr naming it; the others are still predicted; the
// returned error says how many failed.
func predictImages(ctx context.Context, p predict.Predictor, paths []string, o predictOptions, stdout, stderr io.Writer) error {
	cfg := p.Config()
	popt := preprocess.FromConfig(cfg)
	per := 3 * cfg.ImageSize * cfg.ImageSize
	failed := 0
	fail := func(path string, err error) {
		failed++
		fmt.Fprintf(stderr, "artnet: %s\n", oneLine(err.Error()))
		slog.Debug("predict failed", "image", path, "err", err)
	}
	enc := json.NewEncoder(stdout)
	for start := 0; start < len(paths); {
		buf := make([]float32, 0, o.batch*per)
		var names []string
		for ; start < len(paths) && len(names) < o.batch; start++ {
			x, err := preprocess.DecodeFile(paths[start], popt)
			if err != nil {
				fail(paths[start], err)
				continue
			}
			buf = append(buf, x...)
			names = append(names, paths[start])
		}
		if len(names) == 0 {
			continue
		}
		res, err := p.Run(ctx, buf, len(names))
		if err != nil {
			return fmt.Errorf("predict: model run on %d images: %w", len(names), err)
		}
		for i, name := range names {
			pr := predict.Postprocess(cfg, res, i, name, o.topK, o.attention)
			if o.json {
				if err := enc.Encode(pr); err != nil {
					return err
				}
				continue
			}
			printPrediction(stdout, pr)
		}
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("predict: %d of %d images failed", failed, len(paths))}
	}
	return nil
}

func printPrediction(w io.Writer, p *predict.Prediction) {
	fmt.Fprintf(w, "%s\n", p.Image)
	for _, t := range spec.Tasks {
		tp := *p.Task(t)
		fmt.Fprintf(w, "  %-7s %-32s %6.2f%%\n", t+":", tp.Label, 100*tp.Confidence)
		for i, s := range tp.TopK {
			if i == 0 {
				continue
			}
			fmt.Fprintf(w, "  %-7s %-32s %6.2f%%\n", "", s.Label, 100*s.Confidence)
		}
	}
}
