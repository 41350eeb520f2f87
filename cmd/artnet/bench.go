package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/benchmark"
	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/train"
)

func benchCommand() *cli.Command {
	common := []cli.Flag{
		&cli.StringFlag{Name: "variant", Value: "b0", Usage: "EfficientNet variant b0…b4 (full width and depth; the spec's projection, BiLSTM, attention and heads)"},
		&cli.IntFlag{Name: "image-size", Value: 128, Usage: "square input size in pixels"},
		&cli.IntFlag{Name: "batch", Value: 8, Usage: "images per step (default 8, or the first phase's batch of a YAML --model-config)"},
		&cli.StringFlag{Name: "model-config", Usage: "model `FILE`: a spec.Config JSON, or a YAML training config (configs/train.yaml: its model section); overrides --variant and --image-size"},
		&cli.IntFlag{Name: "steps", Value: 3, Usage: "measured steps (after the first, compiling step and --warmup)"},
		&cli.IntFlag{Name: "warmup", Value: 1, Usage: "steps after the first that are excluded too"},
		&cli.StringFlag{Name: "backend", Usage: "GoMLX backend: go (default), a go:<options> config, or xla:cuda (-tags xla); default $GOMLX_BACKEND"},
		&cli.Int64Flag{Name: "seed", Value: 1},
		&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile (pprof) of the measured steps to `FILE`"},
		&cli.BoolFlag{Name: "ops", Usage: "profile the measured steps and print the CPU time per GoMLX op type"},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "measure training and inference speed: step time, images/s, achieved multiply-adds/s",
		Subcommands: []*cli.Command{
			{
				Name:  "train",
				Usage: "time DeepArtNet training steps (forward, backward, AdamW) on random images",
				Flags: append(append([]cli.Flag{}, common...),
					&cli.Float64Flag{Name: "lr", Value: 1e-3, Usage: "AdamW learning rate (constant)"},
					&cli.StringFlag{Name: "out", Usage: "keep the trained checkpoint in `DIR` (default: a temporary folder, removed)"},
				),
				Action: func(c *cli.Context) error {
					cfg, batch, err := benchConfig(c)
					if err != nil {
						return err
					}
					return runBench(c, func(prof io.Writer) (*benchmark.Report, error) {
						return benchmark.Train(c.Context, benchmark.TrainOptions{
							Config: cfg, Batch: batch, Steps: c.Int("steps"), Warmup: c.Int("warmup"),
							Backend: c.String("backend"), LR: c.Float64("lr"), Seed: c.Int64("seed"),
							OutDir: c.String("out"), Profile: prof,
						}, slog.Default())
					})
				},
			},
			{
				Name:  "infer",
				Usage: "time forward passes in GoMLX (fresh weights or --checkpoint) or of an exported model in ONNX Runtime (--onnx)",
				Flags: append(append([]cli.Flag{}, common...),
					&cli.StringFlag{Name: "checkpoint", Usage: "GoMLX checkpoint `DIR` (its config replaces --variant/--model-config)"},
					&cli.StringFlag{Name: "onnx", Usage: "exported model `FILE.onnx`: run it in ONNX Runtime instead of GoMLX"},
					&cli.StringFlag{Name: "provider", Value: "cpu", Usage: "with --onnx: ONNX Runtime providers in order (cpu, cuda, tensorrt; comma-separated)"},
					&cli.StringFlag{Name: "reference-provider", Usage: "with --onnx: also run the same batch on these providers (e.g. cpu) and report the largest output difference"},
					&cli.StringFlag{Name: "reference-checkpoint", Usage: "with --onnx: also run the same batch through this GoMLX checkpoint `DIR` (--backend) and report the largest output difference"},
					&cli.Float64Flag{Name: "tolerance", Usage: "with --reference-provider/--reference-checkpoint: fail when the largest output difference exceeds this (0: report only)"},
					&cli.IntFlag{Name: "threads", Usage: "with --onnx: ONNX Runtime intra-op threads (0: ORT's default)"},
					&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime, then system folders)"},
					&cli.StringFlag{Name: "trt-cache", Usage: "with --provider tensorrt: TensorRT engine cache `DIR`"},
					command.EPLibFlag(),
				),
				Action: func(c *cli.Context) error {
					libs, err := command.ProviderLibraries(c)
					if err != nil {
						return err
					}
					o := benchmark.InferOptions{Checkpoint: c.String("checkpoint"), ONNX: c.String("onnx"),
						Steps: c.Int("steps"), Warmup: c.Int("warmup"), Backend: c.String("backend"), Seed: c.Int64("seed"),
						ORT: onnxrt.Options{LibraryPath: c.String("ort-lib"), Providers: splitList(c.String("provider")),
							IntraOpThreads: c.Int("threads"), TensorRTCacheDir: c.String("trt-cache"), ProviderLibraries: libs},
						Reference: splitList(c.String("reference-provider")), ReferenceCheckpoint: c.String("reference-checkpoint")}
					if o.Config, o.Batch, err = benchConfig(c); err != nil {
						return err
					}
					if o.Checkpoint != "" && o.ONNX != "" {
						return fmt.Errorf("flags --checkpoint and --onnx: give one")
					}
					// A training output folder stands for its newest good checkpoint.
					for _, dir := range []*string{&o.Checkpoint, &o.ReferenceCheckpoint} {
						if *dir != "" {
							if *dir, err = train.ResolveCheckpoint(*dir); err != nil {
								return err
							}
						}
					}
					if o.ONNX == "" && (len(o.Reference) > 0 || o.ReferenceCheckpoint != "") {
						return fmt.Errorf("flags --reference-provider and --reference-checkpoint: need --onnx")
					}
					return runBench(c, func(prof io.Writer) (*benchmark.Report, error) {
						o.Profile = prof
						r, err := benchmark.Infer(c.Context, o)
						if err == nil && c.Float64("tolerance") > 0 && r.Reference != "" && !(r.MaxAbsDiff <= c.Float64("tolerance")) {
							r.Print(c.App.Writer)
							return nil, fmt.Errorf("bench infer: outputs on %s differ from %s by %.3g > --tolerance %g", r.Backend, r.Reference, r.MaxAbsDiff, c.Float64("tolerance"))
						}
						return r, err
					})
				},
			},
			{
				Name:  "compare",
				Usage: "one training step's loss and gradients on two GoMLX backends (e.g. xla:cuda vs go), same weights and batch",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "backend", Value: "go", Usage: "backend under test (go, go:<options>, xla:cuda with -tags xla)"},
					&cli.StringFlag{Name: "reference-backend", Value: "go:reference", Usage: "backend it is compared with (go:reference: GoMLX's own pure-Go executors)"},
					&cli.StringFlag{Name: "model-config", Usage: "model `FILE` (spec.Config JSON or YAML training config); default: the tiny CPU configuration"},
					&cli.IntFlag{Name: "batch", Value: 4},
					&cli.Int64Flag{Name: "seed", Value: 1},
					&cli.Float64Flag{Name: "tolerance", Value: 1e-4, Usage: "largest relative difference of the loss and of any variable's gradient (normwise) that passes"},
					&cli.BoolFlag{Name: "json", Usage: "print the comparison as JSON"},
				},
				Action: func(c *cli.Context) error {
					cfg := spec.Tiny()
					if c.String("model-config") != "" {
						var err error
						if cfg, _, err = benchConfig(c); err != nil {
							return err
						}
					}
					r, err := benchmark.CompareStep(cfg, c.Int("batch"), c.Int64("seed"), c.String("backend"), c.String("reference-backend"))
					if err != nil {
						return err
					}
					if c.Bool("json") {
						b, err := json.MarshalIndent(r, "", "  ")
						if err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "%s\n", b)
					} else if err := r.Print(c.App.Writer); err != nil {
						return err
					}
					if !r.Within(c.Float64("tolerance")) {
						return fmt.Errorf("bench compare: %s differs from %s by more than --tolerance %g (loss %.3g, gradients %.3g at %s)",
							r.Backend, r.Reference, c.Float64("tolerance"), r.LossRelDiff, r.GradRelDiff, r.WorstVariable)
					}
					return nil
				},
			},
			{
				Name:      "ops",
				Usage:     "split a CPU profile (artnet bench --cpuprofile, go test -cpuprofile) by GoMLX op type",
				ArgsUsage: "PROFILE",
				Flags:     []cli.Flag{&cli.IntFlag{Name: "top", Value: 25, Usage: "rows to print (the rest summed)"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("bench ops: want one profile file, got %d arguments", c.NArg())
					}
					f, err := os.Open(c.Args().First())
					if err != nil {
						return fmt.Errorf("bench ops: %w", err)
					}
					defer f.Close()
					shares, err := benchmark.OpBreakdown(f)
					if err != nil {
						return fmt.Errorf("bench ops: %s: %w", c.Args().First(), err)
					}
					return benchmark.PrintOpBreakdown(c.App.Writer, shares, c.Int("top"))
				},
			},
		},
	}
}

// benchConfig is the model of --model-config (a JSON spec.Config or a YAML training config) or
// of --variant/--image-size (the spec's DeepArtNet with that backbone), and the batch size.
func benchConfig(c *cli.Context) (spec.Config, int, error) {
	batch := c.Int("batch")
	if c.String("checkpoint") != "" || c.String("onnx") != "" {
		return spec.Config{}, batch, nil // the model file's own config
	}
	p := c.String("model-config")
	if ext := strings.ToLower(filepath.Ext(p)); ext == ".yaml" || ext == ".yml" {
		fc, err := train.LoadFileConfig(p)
		if err != nil {
			return spec.Config{}, 0, err
		}
		cfg, err := fc.ModelConfig()
		if err != nil {
			return spec.Config{}, 0, fmt.Errorf("%s: %w", p, err)
		}
		if !c.IsSet("batch") && len(fc.Phases) > 0 && fc.Phases[0].Batch > 0 {
			batch = fc.Phases[0].Batch
		}
		if err := cfg.Validate(); err != nil {
			return cfg, 0, fmt.Errorf("%s: field model: %s", p, errtext.OneLine(err))
		}
		return cfg, batch, nil
	}
	variant, size := c.String("variant"), c.Int("image-size")
	if p != "" {
		if !c.IsSet("variant") {
			variant = ""
		}
		if !c.IsSet("image-size") {
			size = 0
		}
	}
	cfg, err := importConfig(variant, p, size, "")
	return cfg, batch, err
}

// runBench runs one benchmark with the profile flags and prints its report.
func runBench(c *cli.Context, run func(prof io.Writer) (*benchmark.Report, error)) error {
	var prof *bytes.Buffer
	if c.String("cpuprofile") != "" || c.Bool("ops") {
		prof = new(bytes.Buffer)
	}
	var w io.Writer
	if prof != nil {
		w = prof
	}
	r, err := run(w)
	if err != nil {
		return err
	}
	if p := c.String("cpuprofile"); p != "" {
		if err := atomicfile.WriteFile(p, prof.Bytes(), 0o644); err != nil {
			return fmt.Errorf("flag --cpuprofile: %w", err)
		}
	}
	if c.Bool("json") {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.App.Writer, "%s\n", b)
		return err
	}
	if err := r.Print(c.App.Writer); err != nil {
		return err
	}
	if c.Bool("ops") {
		shares, err := benchmark.OpBreakdown(bytes.NewReader(prof.Bytes()))
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, "CPU time of the measured steps by GoMLX op type:")
		return benchmark.PrintOpBreakdown(c.App.Writer, shares, 25)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
