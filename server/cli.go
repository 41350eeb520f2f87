package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/heatmap"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
	ortrt "github.com/artnet/artnet/runtime"
)

func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model", Usage: "the exported model `FILE.onnx` (artnet export --onnx)", Required: true},
		&cli.StringFlag{Name: "provider", Value: "cpu", Usage: "ONNX Runtime execution providers in order, comma-separated: cpu, cuda, tensorrt; a later one is a fallback only when listed (cuda,cpu)"},
		&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime, then system folders)"},
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: ORT's default)"},
	}
}

// openModel opens the --model file with the runtime flags.
func openModel(c *cli.Context) (*ortrt.Model, error) {
	if c.Int("threads") < 0 {
		return nil, fmt.Errorf("flag --threads: must be >= 0, got %d", c.Int("threads"))
	}
	var providers []string
	for _, p := range strings.Split(c.String("provider"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			providers = append(providers, p)
		}
	}
	return ortrt.Open(c.String("model"), ortrt.Options{
		LibraryPath: c.String("ort-lib"), Providers: providers, IntraOpThreads: c.Int("threads"),
	})
}

// Command is the `serve` command: it opens the model in ONNX Runtime, serves it on --addr until
// SIGINT/SIGTERM (or the cli context ends), then closes the model.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve an exported ONNX model over HTTP (/v1/predict, KServe v2, /metrics, a web page at /)",
		Flags: append(runtimeFlags(),
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
	m, err := openModel(c)
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
		Flags: append(runtimeFlags(),
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
			o := PredictOptions{TopK: c.Int("topk"), JSON: c.Bool("json"), Attention: c.Bool("attention"), HeatmapDir: c.String("heatmap"), Batch: c.Int("batch")}
			if o.TopK < 1 || o.Batch < 1 {
				return fmt.Errorf("flags --topk and --batch: must be >= 1, got %d and %d", o.TopK, o.Batch)
			}
			m, err := openModel(c)
			if err != nil {
				return err
			}
			err = PredictFiles(c.Context, m, c.Args().Slice(), o, os.Stdout, os.Stderr)
			return errors.Join(err, m.Close())
		},
	}
}

// PredictOptions configure PredictFiles.
type PredictOptions struct {
	TopK       int
	JSON       bool
	Attention  bool   // attention weights in the JSON
	HeatmapDir string // "" writes no overlays
	Batch      int
}

// PredictFiles decodes the images at paths, runs them in batches of o.Batch and prints one
// result per image on stdout. A bad image gets one line on stderr naming it and the others
// are still predicted; the error then says how many failed.
func PredictFiles(ctx context.Context, p predict.Predictor, paths []string, o PredictOptions, stdout, stderr io.Writer) error {
	cfg := p.Config()
	popt := preprocess.FromConfig(cfg)
	o.Batch = max(o.Batch, 1)
	failed := 0
	enc := json.NewEncoder(stdout)
	buf := make([]float32, 0, o.Batch*popt.Len())
	for start := 0; start < len(paths); {
		buf = buf[:0]
		var names []string
		var imgs []image.Image
		for ; start < len(paths) && len(names) < o.Batch; start++ {
			img, err := preprocess.DecodeImageFile(paths[start], popt)
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "predict: %s\n", oneLine(err.Error()))
				continue
			}
			n := len(buf)
			buf = append(buf, make([]float32, popt.Len())...)
			preprocess.ToTensorInto(buf[n:], img, popt)
			names = append(names, paths[start])
			if o.HeatmapDir != "" {
				imgs = append(imgs, img)
			}
		}
		if len(names) == 0 {
			continue
		}
		res, err := p.Run(ctx, buf, len(names))
		if err != nil {
			return fmt.Errorf("predict: model run on %d images: %w", len(names), err)
		}
		for i, name := range names {
			pr := predict.Postprocess(cfg, res, i, name, o.TopK, o.Attention)
			if o.HeatmapDir != "" {
				gh, gw := cfg.Grid()
				if err := writeHeatmap(o.HeatmapDir, name, imgs[i], res.Row("attention", i), popt, gh, gw); err != nil {
					failed++
					fmt.Fprintf(stderr, "predict: %s: heatmap: %s\n", name, oneLine(err.Error()))
				}
			}
			if o.JSON {
				if err := enc.Encode(pr); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintln(stdout, textLine(pr))
		}
	}
	if failed > 0 {
		return fmt.Errorf("predict: %d of %d images failed", failed, len(paths))
	}
	return nil
}

// writeHeatmap writes the attention overlay of image path into dir/<base>.heatmap.png
// atomically (temp file + rename).
func writeHeatmap(dir, path string, img image.Image, att []float32, popt preprocess.Options, gh, gw int) (err error) {
	crop := preprocess.CropBox(img.Bounds().Dx(), img.Bounds().Dy(), popt)
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".heatmap.png")
	f, err := os.CreateTemp(dir, ".heatmap-*.png")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := heatmap.EncodePNG(f, heatmap.Overlay(img, att, gh, gw, crop)); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

// textLine is the human-readable line of a prediction.
func textLine(p *predict.Prediction) string {
	var b strings.Builder
	b.WriteString(p.Image)
	b.WriteString(":")
	for i, t := range []string{"style", "genre", "artist"} {
		tp := *p.Task(t)
		if i > 0 {
			b.WriteString(";")
		}
		if len(tp.TopK) > 1 {
			fmt.Fprintf(&b, " %s", t)
			for j, s := range tp.TopK {
				if j > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, " %s %.1f%%", s.Label, 100*s.Confidence)
			}
			continue
		}
		fmt.Fprintf(&b, " %s %s %.1f%%", t, tp.Label, 100*tp.Confidence)
	}
	return b.String()
}
