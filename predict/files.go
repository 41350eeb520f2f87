package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"path/filepath"
	"strings"

	"github.com/artnet/artnet/heatmap"
	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/preprocess"
)

// ErrImagesFailed is wrapped by Files' error when some images could not be predicted (each
// already reported on stderr); the CLI maps it to exit status 1.
var ErrImagesFailed = errors.New("predict")

// FilesOptions configure Files.
type FilesOptions struct {
	TopK      int
	JSON      bool
	Attention bool // attention weights in the JSON
	// HeatmapDir, if set, gets one overlay per image: DIR/<name>.heatmap.png, where <name> is
	// the file name without extension; inputs sharing a name (a/x.jpg, b/x.png) get <name>-2,
	// <name>-3, … in input order. Each prediction names its overlay (Prediction.Heatmap).
	HeatmapDir string
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
	var heatmaps map[string]string
	if o.HeatmapDir != "" {
		heatmaps = heatmapNames(o.HeatmapDir, paths)
	}
	for start := 0; start < len(paths); {
		buf = buf[:0]
		var names []string
		var imgs []image.Image
		for ; start < len(paths) && len(names) < o.Batch; start++ {
			img, err := preprocess.DecodeImageFile(paths[start], popt)
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "predict: %s\n", errtext.OneLine(err))
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
					out = heatmaps[name]
				}
				pr.Heatmap = out
				if err := writeHeatmap(out, imgs[i], res.Row(spec.OutputAttention, i), popt, gh, gw); err != nil {
					failed++
					fmt.Fprintf(stderr, "predict: %s: heatmap: %s\n", name, errtext.OneLine(err))
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
