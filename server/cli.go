package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/predict"
	ortrt "github.com/artnet/artnet/runtime"
)

// RuntimeFlags are the flags OpenModel reads: --model, --provider, --ort-lib, --threads.
func RuntimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model", Usage: "the exported model `FILE.onnx` (artnet export --onnx); default: the built-in model (" + defaultmodel.Name + ")"},
		&cli.StringFlag{Name: "provider", Value: "cpu", Usage: "ONNX Runtime execution providers in order, comma-separated: cpu, cuda, tensorrt; a later one is a fallback only when listed (cuda,cpu)"},
		&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime, then system folders)"},
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: ORT's default)"},
	}
}

// OpenModel opens the --model file (the built-in default model when --model is not given) in
// ONNX Runtime with the runtime flags of RuntimeFlags.
func OpenModel(c *cli.Context) (*ortrt.Model, error) {
	if c.Int("threads") < 0 {
		return nil, fmt.Errorf("flag --threads: must be >= 0, got %d", c.Int("threads"))
	}
	var providers []string
	for _, p := range strings.Split(c.String("provider"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			providers = append(providers, p)
		}
	}
	o := ortrt.Options{LibraryPath: c.String("ort-lib"), Providers: providers, IntraOpThreads: c.Int("threads")}
	if c.String("model") == "" {
		slog.Debug("no --model: using the built-in default model", "model", defaultmodel.Name)
		return ortrt.OpenBytes(defaultmodel.Name, defaultmodel.Bytes(), o)
	}
	return ortrt.Open(c.String("model"), o)
}

// Command is the `serve` command: it opens the model in ONNX Runtime, serves it on --addr until
// SIGINT/SIGTERM (or the cli context ends), then closes the model.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve an exported ONNX model over HTTP (/v1/predict, KServe v2, /metrics, a web page at /)",
		Flags: append(RuntimeFlags(),
			&cli.StringFlag{Name: "addr", Value: DefaultAddr, Usage: "listen address"},
			&cli.IntFlag{Name: "batch", Value: DefaultBatch, Usage: "largest batch of images per model run"},
			&cli.DurationFlag{Name: "max-delay", Value: DefaultMaxDelay, Usage: "longest a request waits for a batch to fill"},
			&cli.IntFlag{Name: "queue", Usage: "requests admitted but not yet running before 503 (0: 8 × batch)"},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "model runs in flight at once"},
			&cli.Int64Flag{Name: "max-body", Value: DefaultMaxBodyBytes, Usage: "largest request body in bytes"},
			&cli.IntFlag{Name: "max-pixels", Value: DefaultMaxPixels, Usage: "largest image (width × height, from its header) accepted"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("serve: unexpected arguments %q", c.Args().Slice())
			}
			cfg := Config{
				Batch: c.Int("batch"), MaxDelay: c.Duration("max-delay"), Queue: c.Int("queue"), Workers: c.Int("workers"),
				MaxBodyBytes: c.Int64("max-body"), MaxPixels: c.Int("max-pixels"),
			}
			for _, f := range []struct {
				name string
				v    int64
			}{{"batch", int64(cfg.Batch)}, {"workers", int64(cfg.Workers)}, {"max-body", cfg.MaxBodyBytes}, {"max-pixels", int64(cfg.MaxPixels)}} {
				if f.v < 1 {
					return fmt.Errorf("flag --%s: must be >= 1, got %d", f.name, f.v)
				}
			}
			if cfg.Queue < 0 || cfg.MaxDelay < 0 {
				return fmt.Errorf("flags --queue and --max-delay: must be >= 0")
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Run(ctx, c, cfg, slog.Default())
		},
	}
}

// Run opens the model named by the runtime flags in c, serves it on c's --addr until ctx ends
// and closes the model.
func Run(ctx context.Context, c *cli.Context, cfg Config, log *slog.Logger) error {
	m, err := OpenModel(c)
	if err != nil {
		return err
	}
	log.Info("model loaded", "model", m.Name(), "providers", m.Providers(), "ort", ortrt.Version(), "variant", m.Config().Variant, "input", m.Config().ImageSize)
	srv, err := New(cfg, m, log)
	if err != nil {
		return errors.Join(err, m.Close())
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return errors.Join(fmt.Errorf("serve: %w", err), m.Close())
	}
	err = srv.Serve(ctx, ln)
	return errors.Join(err, m.Close())
}

// PredictCommand is a lean `predict` (ONNX Runtime only): it prints one line, or one JSON
// object (predict.Prediction) per image.
func PredictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "predict style, genre and artist of images with an exported ONNX model",
		ArgsUsage: "IMAGE...",
		Flags: append(RuntimeFlags(),
			&cli.IntFlag{Name: "topk", Value: 1, Usage: "also list the k most probable classes per task"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per image on stdout"},
			&cli.BoolFlag{Name: "attention", Usage: "include the attention weights in --json output"},
			&cli.StringFlag{Name: "heatmap", Usage: "write each image's attention overlay as `DIR`/<name>.heatmap.png"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per model run"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("predict: no image given (usage: predict --model FILE.onnx IMAGE...)")
			}
			o := predict.FilesOptions{TopK: c.Int("topk"), JSON: c.Bool("json"), Attention: c.Bool("attention"), HeatmapDir: c.String("heatmap"), Batch: c.Int("batch")}
			if o.TopK < 1 || o.Batch < 1 {
				return fmt.Errorf("flags --topk and --batch: must be >= 1, got %d and %d", o.TopK, o.Batch)
			}
			m, err := OpenModel(c)
			if err != nil {
				return err
			}
			err = predict.Files(c.Context, m, c.Args().Slice(), o, os.Stdout, os.Stderr)
			return errors.Join(err, m.Close())
		},
	}
}
