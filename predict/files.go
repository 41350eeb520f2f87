package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/artnet/artnet/heatmap"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/preprocess"
)

// ErrImagesFailed is wrapped by Files' error when some images could not be predicted (each
// already reported on stderr); the CLI maps it to exit status 1.
var ErrImagesFailed = errors.New("predict")

// FilesOptions configure Files.
type FilesOptions struct {
	TopK       int
	JSON       bool
	Attention  bool   // attention weights in the JSON
	HeatmapDir string // "" writes no overlays; else DIR/<name>.heatmap.png per image
	// HeatmapFile, with exactly one image, is the overlay's path instead (e.g. out.png).
	HeatmapFile string
	Batch       int
}

// Files decodes the images at paths, runs them in batches of o.Batch and prints one
// result per image on stdout. A bad image gets one line on stderr naming it and the others
// are still predicted; the error then says how many failed.
func Files(ctx context.Context, p Predictor, paths []string, o FilesOptions, stdout, stderr io.Writer) error {
	if o.HeatmapFile != "" && len(paths) != 1 {
		return fmt.Errorf("predict: an attention overlay file (%s) takes exactly one image, got %d; give a folder instead", o.HeatmapFile, len(paths))
	}
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
				fmt.Fprintf(stderr, "predict: %s\n", errtext.OneLine(err.Error()))
				continue
			}
			n := len(buf)
			buf = append(buf, make([]float32, popt.Len())...)
			preprocess.ToTensorInto(buf[n:], img, popt)
			names = append(names, paths[start])
			if o.HeatmapDir != "" || o.HeatmapFile != "" {
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
			pr := Postprocess(cfg, res, i, name, o.TopK, o.Attention)
			if o.HeatmapDir != "" || o.HeatmapFile != "" {
				gh, gw := cfg.Grid()
				out := o.HeatmapFile
				if out == "" {
					out = filepath.Join(o.HeatmapDir, strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))+".heatmap.png")
				}
				if err := writeHeatmap(out, imgs[i], res.Row("attention", i), popt, gh, gw); err != nil {
					failed++
					fmt.Fprintf(stderr, "predict: %s: heatmap: %s\n", name, errtext.OneLine(err.Error()))
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
		return fmt.Errorf("%w: %d of %d images failed", ErrImagesFailed, failed, len(paths))
	}
	return nil
}

// writeHeatmap writes the attention overlay of an image to out
// atomically (temp file + rename).
func writeHeatmap(out string, img image.Image, att []float32, popt preprocess.Options, gh, gw int) (err error) {
	crop := preprocess.CropBox(img.Bounds().Dx(), img.Bounds().Dy(), popt)
	f, err := os.CreateTemp(filepath.Dir(out), ".heatmap-*.png")
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
func textLine(p *Prediction) string {
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
