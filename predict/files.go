package predict

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"path/filepath"
	"strings"

	"github.com/artnet/artnet/heatmap"
	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/preprocess"
)

// ErrImagesFailed is wrapped by Files' error when some images could not be predicted (each
// already handed to FilesOptions.Failed); the CLI maps it to exit status 1.
var ErrImagesFailed = errors.New("predict")

// FilesOptions configure Files.
type FilesOptions struct {
	TopK      int
	Attention bool // attention weights in each Prediction
	// HeatmapDir, if set, gets one overlay per image: DIR/<name>.heatmap.png, where <name> is
	// the file name without extension; inputs sharing a name (a/x.jpg, b/x.png) get <name>-2,
	// <name>-3, … in input order. Each prediction names its overlay (Prediction.Heatmap).
	HeatmapDir string
	// HeatmapFile, with exactly one image, is the overlay's path instead (e.g. out.png).
	HeatmapFile string
	Batch       int
	// Emit receives each prediction, in input order; its error stops Files. Required.
	Emit func(*Prediction) error
	// Failed is told of each image that could not be predicted, or whose overlay could not be
	// written; the others are still predicted. Nil: ignored (Files' error still counts them).
	Failed func(path string, err error)
}

// Files decodes the images at paths, runs them through pl in batches of o.Batch and hands one
// Prediction per image to o.Emit; printing them is the caller's. A bad image goes to o.Failed
// and the others are still predicted; the error then says how many failed.
func Files(ctx context.Context, pl *Pipeline, paths []string, o FilesOptions) error {
	if o.HeatmapFile != "" && len(paths) != 1 {
		return fmt.Errorf("predict: an attention overlay file (%s) takes exactly one image, got %d; give a folder instead", o.HeatmapFile, len(paths))
	}
	if o.Emit == nil {
		return errors.New("predict: FilesOptions.Emit is nil")
	}
	failedFn := o.Failed
	if failedFn == nil {
		failedFn = func(string, error) {}
	}
	cfg, popt := pl.Config(), pl.Options()
	per := popt.Len()
	o.Batch = max(o.Batch, 1)
	failed := 0
	buf := make([]float32, 0, o.Batch*per)
	var heatmaps map[string]string
	if o.HeatmapDir != "" {
		heatmaps = heatmapNames(o.HeatmapDir, paths)
	}
	overlays := o.HeatmapDir != "" || o.HeatmapFile != ""
	for start := 0; start < len(paths); {
		buf = buf[:0]
		var names []string
		var imgs []image.Image
		for ; start < len(paths) && len(names) < o.Batch; start++ {
			img, err := pl.DecodeFile(paths[start])
			if err == nil {
				buf = append(buf, make([]float32, per)...)
				if err = pl.Preprocess(buf[len(buf)-per:], img); err != nil {
					buf = buf[:len(buf)-per]
				}
			}
			if err != nil {
				failed++
				failedFn(paths[start], err)
				continue
			}
			names = append(names, paths[start])
			if overlays {
				imgs = append(imgs, img)
			}
		}
		if len(names) == 0 {
			continue
		}
		res, err := pl.Run(ctx, buf, len(names))
		if err != nil {
			return fmt.Errorf("predict: model run on %d images: %w", len(names), err)
		}
		for i, name := range names {
			pr, err := pl.Postprocess(res, i, name, o.TopK, o.Attention)
			if err != nil {
				return fmt.Errorf("predict: %s: %w", name, err)
			}
			if overlays {
				gh, gw := cfg.Grid()
				out := o.HeatmapFile
				if out == "" {
					out = heatmaps[name]
				}
				pr.Heatmap = out
				if err := writeHeatmap(out, imgs[i], res.Row(spec.OutputAttention, i), popt, gh, gw); err != nil {
					failed++
					failedFn(name, fmt.Errorf("heatmap: %w", err))
				}
			}
			if err := o.Emit(pr); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d images failed", ErrImagesFailed, failed, len(paths))
	}
	return nil
}

// heatmapNames gives each input path its own overlay file in dir: <name>.heatmap.png, or
// <name>-N.heatmap.png (N = 2, 3, …, in input order) when an earlier input took the name.
func heatmapNames(dir string, paths []string) map[string]string {
	out := make(map[string]string, len(paths))
	taken := map[string]bool{}
	for _, p := range paths {
		if _, ok := out[p]; ok {
			continue // the same file given twice gets one overlay
		}
		stem := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		name := stem
		for n := 2; taken[strings.ToLower(name)]; n++ { // X.jpg and x.png collide on macOS
			name = fmt.Sprintf("%s-%d", stem, n)
		}
		taken[strings.ToLower(name)] = true
		out[p] = filepath.Join(dir, name+".heatmap.png")
	}
	return out
}

// writeHeatmap writes the attention overlay of an image to out atomically.
func writeHeatmap(out string, img image.Image, att []float32, popt preprocess.Options, gh, gw int) error {
	crop := preprocess.CropBox(img.Bounds().Dx(), img.Bounds().Dy(), popt)
	return atomicfile.Write(out, 0o644, func(w io.Writer) error {
		return heatmap.EncodePNG(w, heatmap.Overlay(img, att, gh, gw, crop))
	})
}
