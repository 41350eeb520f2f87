package quantize

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/artnet/artnet/preprocess"
	"github.com/artnet/artnet/wikiart"
)

// imageExts are the file name endings LoadImages takes from a plain folder.
var imageExts = []string{".jpg", ".jpeg", ".png", ".webp", ".gif"}

// CalibrationFiles picks n calibration images from dir, spread evenly over the list
// (deterministic): from the train split when dir is a WikiArt root (style_train.csv present;
// paths that the val split also lists are left out), else every image file under dir in
// lexical order. n ≤ 0 takes all.
func CalibrationFiles(dir string, n int) ([]string, error) {
	var files []string
	if _, err := os.Stat(filepath.Join(dir, wikiart.FileName(wikiart.Style, "train"))); err == nil {
		train, _, _, rep, err := wikiart.Load(wikiart.Options{Root: dir, Disjoint: true})
		if err != nil {
			return nil, err
		}
		if !rep.ImagesChecked {
			return nil, fmt.Errorf("calibration folder %s: WikiArt root without an images folder", dir)
		}
		images := filepath.Join(dir, "images")
		for _, s := range train.Samples {
			files = append(files, s.File(images))
		}
	} else {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && slices.Contains(imageExts, strings.ToLower(filepath.Ext(p))) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("calibration folder: %w", err)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("calibration folder %s: no images (%s)", dir, strings.Join(imageExts, ", "))
	}
	if n <= 0 || n >= len(files) {
		return files, nil
	}
	picked := make([]string, n)
	for i := range picked {
		picked[i] = files[i*len(files)/n]
	}
	return picked, nil
}

// LoadImages decodes files with o (the model's preprocessing) into batches of up to batch
// images. A file that does not decode is skipped with a warning; none decoding is an error.
func LoadImages(ctx context.Context, files []string, o preprocess.Options, batch int) ([][]float32, int, error) {
	if batch < 1 {
		return nil, 0, fmt.Errorf("calibration batch %d: must be ≥ 1", batch)
	}
	var (
		batches [][]float32
		cur     []float32
		count   int
	)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		x, err := preprocess.DecodeFile(f, o)
		if err != nil {
			slog.Warn("calibration image skipped", "file", f, "err", err)
			continue
		}
		cur = append(cur, x...)
		count++
		if len(cur) == batch*o.Len() {
			batches, cur = append(batches, cur), nil
		}
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	if count == 0 {
		return nil, 0, fmt.Errorf("calibration: none of the %d images could be decoded", len(files))
	}
	return batches, count, nil
}
