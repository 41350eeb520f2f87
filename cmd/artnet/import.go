package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/wikiart"
)

// importSeed seeds the initialization of the parts a weights file does not provide (the head
// of a pretrained backbone), so that an import is reproducible.
const importSeed = 1

// importCommand is `artnet import`: PyTorch/timm weights (safetensors or .pth) → an artnet checkpoint.
func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "import PyTorch weights (safetensors or .pth/.pt: a DeepArtNet state dict, a pretrained backbone, torchvision or timm efficientnet_bN) into a checkpoint",
		ArgsUsage: " ",
		Description: "Names are detected automatically: DeepArtNet's (backbone.features.*, backbone.proj.*, encoder.lstm.*, attention.*, heads.*),\n" +
			"a backbone alone (backbone.features.*, the rest freshly initialized), torchvision's efficientnet_bN (features.*)\n" +
			"or timm's efficientnet_bN (conv_stem, bn1, blocks.s.b.*, conv_head, bn2); ImageNet classifiers are ignored.\n" +
			"Careful: timm's tf_efficientnet_bN weights have the same names and shapes but are another network\n" +
			"(TensorFlow 'SAME' padding, BatchNorm eps 1e-3). They import without error and compute something else;\n" +
			"only a file whose metadata says so is refused. Use torchvision's or timm's (non-tf_) efficientnet_bN weights.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "weights", Required: true, Usage: "PyTorch weights: safetensors or torch.save .pth/.pt (told apart by content)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "checkpoint directory to write (atomically; nothing is written on error)"},
			&cli.StringFlag{Name: "variant", Usage: "EfficientNet variant b0..b4 of the model (default b4, the spec's; not with --model-config)"},
			&cli.StringFlag{Name: "model-config", Usage: "JSON model configuration (spec.Config), e.g. a checkpoint's config.json"},
			&cli.IntFlag{Name: "image-size", Usage: "input size H = W (default: the configuration's; the resize size keeps its ratio)"},
			&cli.StringFlag{Name: "classes-from", Usage: "folder with style_class.txt, genre_class.txt, artist_class.txt ('index Name' per line, as in WikiArt/ArtGAN) for the class names"},
			&cli.BoolFlag{Name: "allow-partial", Usage: "accept a file that lacks some model tensors (they stay initialized) or holds extra ones (skipped); shapes must still match"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace an existing checkpoint at --out"},
			&cli.Int64Flag{Name: "seed", Value: importSeed, Usage: "seed of the initialization of the parts the file does not provide"},
		},
		Action: func(c *cli.Context) error {
			start := time.Now()
			cfg, err := importConfig(c.String("variant"), c.String("model-config"), c.Int("image-size"), c.String("classes-from"))
			if err != nil {
				return err
			}
			out := c.String("out")
			if _, err := os.Lstat(out); err == nil && !c.Bool("overwrite") {
				return fmt.Errorf("import: --out %s already exists (use --overwrite to replace a checkpoint)", out)
			}
			mctx, rep, err := models.ImportWeights(c.String("weights"), cfg, models.ImportOptions{AllowPartial: c.Bool("allow-partial"), Seed: c.Int64("seed")})
			if err != nil {
				return err
			}
			if err := models.SaveCheckpoint(mctx, cfg, out); err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "imported %s (%s names): %d tensors, %d values", rep.Path, rep.Scheme, rep.Loaded, rep.LoadedValues)
			if rep.Renamed > 0 {
				fmt.Fprintf(w, ", %d renamed to the spec's names", rep.Renamed)
			}
			fmt.Fprintln(w)
			if len(rep.Fresh) > 0 {
				fmt.Fprintf(w, "freshly initialized (seed %d): %s (%d tensors)\n", c.Int64("seed"), strings.Join(rep.FreshParts, ", "), len(rep.Fresh))
			}
			if len(rep.Ignored) > 0 {
				counters := 0
				for _, n := range rep.Ignored {
					if strings.HasSuffix(n, "num_batches_tracked") {
						counters++
					}
				}
				fmt.Fprintf(w, "ignored: %d num_batches_tracked counters, %d ImageNet classifier tensors\n", counters, len(rep.Ignored)-counters)
			}
			if len(rep.Unexpected) > 0 {
				fmt.Fprintf(w, "skipped (no model variable): %s\n", strings.Join(rep.Unexpected, ", "))
			}
			for _, warn := range rep.Warnings {
				fmt.Fprintf(w, "warning: %s\n", warn)
			}
			fmt.Fprintf(w, "checkpoint %s: variant %s, %d×%d input, classes %d/%d/%d\n", out, cfg.Variant, cfg.ImageSize, cfg.ImageSize,
				cfg.NumClasses("style"), cfg.NumClasses("genre"), cfg.NumClasses("artist"))
			slog.Debug("import done", "time", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

// importConfig builds the model configuration of an import from the flags: the spec's default
// (b4, 224×224) or a --model-config file, then --variant, --image-size and --classes-from.
func importConfig(variant, configPath string, imageSize int, classesFrom string) (spec.Config, error) {
	cfg := spec.Default()
	if configPath != "" {
		if variant != "" {
			return cfg, errors.New("import: use either --variant or --model-config, not both")
		}
		b, err := os.ReadFile(configPath)
		if err != nil {
			return cfg, fmt.Errorf("flag --model-config: %w", err)
		}
		if cfg, err = spec.ParseJSON(b); err != nil {
			return cfg, fmt.Errorf("model config %s: %s", configPath, errtext.OneLine(err))
		}
	}
	if variant != "" {
		if _, ok := spec.Variants[variant]; !ok {
			return cfg, fmt.Errorf("flag --variant: unknown %q (want b0, b1, b2, b3 or b4)", variant)
		}
		cfg.Variant = variant
	}
	if err := setImageSize(&cfg, imageSize); err != nil {
		return cfg, err
	}
	if classesFrom != "" {
		classes := map[string][]string{}
		for _, task := range spec.Tasks {
			names, err := wikiart.ReadClasses(filepath.Join(classesFrom, task+"_class.txt"))
			if err != nil {
				return cfg, fmt.Errorf("flag --classes-from: %w", err)
			}
			classes[task] = names
		}
		cfg.Classes = classes
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("import: model config: %s", errtext.OneLine(err))
	}
	return cfg, nil
}

// loadWeights imports a weights file for `artnet export --weights`: a whole DeepArtNet, or an
// ImageNet-pretrained backbone under spec, torchvision or timm names, whose projection, LSTM,
// attention and heads are freshly initialized (seeded, reproducible). It logs what was loaded
// and what was left initialized. The context's variables have values and Build reuses them with
// ctx.Reuse(). (`artnet train --pretrained` goes through train.Options.InitFrom.)
func loadWeights(path string, cfg spec.Config, allowPartial bool) (*context.Context, error) {
	ctx, rep, err := models.ImportWeights(path, cfg, models.ImportOptions{AllowPartial: allowPartial, Seed: importSeed})
	if err != nil {
		return nil, err
	}
	slog.Info("pretrained weights", "file", path, "scheme", rep.Scheme, "tensors", rep.Loaded, "renamed", rep.Renamed,
		"fresh", strings.Join(rep.FreshParts, ","), "ignored", len(rep.Ignored), "skipped", len(rep.Unexpected))
	for _, w := range rep.Warnings {
		slog.Warn("pretrained weights: " + w)
	}
	return ctx, nil
}

// setImageSize sets cfg's input size to n (H = W; 0: unchanged) and its resize size so that
// the crop keeps cfg's resize-to-crop ratio (flag --image-size).
func setImageSize(cfg *spec.Config, n int) error {
	if n == 0 {
		return nil
	}
	if n < 32 || n > 4096 {
		return fmt.Errorf("flag --image-size: %d is outside 32..4096", n)
	}
	ratio := cfg.ResizeScale()
	cfg.ImageSize = n
	cfg.ResizeSize = max(n, int(math.Round(float64(n)*ratio)))
	return nil
}
