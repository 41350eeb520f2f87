package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/wikiart"
)

// The files `artnet data report` writes into --out.
const (
	dataReportJSON = "data-report.json"
	dataReportMD   = "data-report.md"
	dataReportPNG  = "data-report.png"
)

// dataReportCommand is `artnet data report`: per data root and split, and for their union,
// images per class of each task, labels per image, image sizes and skipped rows, as JSON,
// markdown and a PNG of the class counts.
func dataReportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "describe the data: images per class per task, labels per image, image sizes, skipped rows (per root and split, and all roots)",
		Description: "Writes " + dataReportJSON + ", " + dataReportMD + " and " + dataReportPNG + " (class counts, log scale) into --out.\n" +
			"--data is repeatable: the first root gives the class lists; later roots may lack the genre/artist files\n" +
			"(those tasks are masked for their images), as in training (data.extra). Image sizes come from the headers only.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "data", Usage: "WikiArt folder (split CSVs, class lists, images/); repeat for more roots; default: $ARTNET_DATA, else data/wikiart"},
			&cli.StringFlag{Name: "images", Usage: "image folder of the first root (default: DATA/images)"},
			&cli.StringFlag{Name: "out", Usage: "folder for the report files (created)"},
			&cli.BoolFlag{Name: "disjoint", Value: true, Usage: "drop train rows whose image a val split keeps, as training does (counted as skipped: in val)"},
			&cli.BoolFlag{Name: "no-sizes", Usage: "skip reading the image headers"},
			&cli.IntFlag{Name: "workers", Usage: "image headers read in parallel (0: 4 × GOMAXPROCS)"},
			&cli.IntFlag{Name: "width", Value: 1500, Usage: "PNG width in pixels"},
			&cli.IntFlag{Name: "height", Value: 1500, Usage: "PNG height in pixels"},
		},
		Action: func(c *cli.Context) error {
			out := c.String("out")
			if out == "" {
				return fmt.Errorf("data report: flag --out: give the folder for the report files")
			}
			if w, h := c.Int("width"), c.Int("height"); w < 400 || h < 400 || w > 10000 || h > 10000 {
				return fmt.Errorf("data report: flags --width/--height: %d×%d, want 400…10000 pixels each", w, h)
			}
			if c.Int("workers") < 0 {
				return fmt.Errorf("data report: flag --workers: must be ≥ 0, got %d", c.Int("workers"))
			}
			roots := c.StringSlice("data")
			from := "--data"
			if len(roots) == 0 {
				var r string
				r, from = wikiart.ResolveRoot("", "")
				roots = []string{r}
			}
			opts := make([]wikiart.Options, len(roots))
			for i, r := range roots {
				if r == "" {
					return fmt.Errorf("data report: flag --data: empty folder name (root %d)", i+1)
				}
				opts[i] = wikiart.Options{Root: r, Disjoint: c.Bool("disjoint")}
			}
			opts[0].Images = c.String("images")
			start := time.Now()
			loaded, err := wikiart.LoadRoots(opts)
			if err != nil {
				if from == "default" {
					return fmt.Errorf("data report: %v (the default data folder; give --data DIR or set %s)", err, wikiart.EnvData)
				}
				return fmt.Errorf("data report: %w", err)
			}
			for i, rep := range loaded.Reports {
				if !rep.ImagesChecked {
					slog.Warn("data report: no image folder: every CSV row counted, no image sizes", "root", roots[i], "hint", wikiart.NoImagesHint(roots[i]))
				}
			}
			d, err := wikiart.Stats(c.Context, loaded, wikiart.StatsOptions{NoSizes: c.Bool("no-sizes"), Workers: c.Int("workers")})
			if err != nil {
				return fmt.Errorf("data report: %w", err)
			}
			js, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				return fmt.Errorf("data report: %w", err)
			}
			png, err := plotClassCounts(d, c.Int("width"), c.Int("height"))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("data report: flag --out: %w", err)
			}
			for _, f := range []struct {
				name string
				data []byte
			}{{dataReportJSON, append(js, '\n')}, {dataReportMD, []byte(d.Markdown())}, {dataReportPNG, png}} {
				if err := atomicfile.WriteFile(filepath.Join(out, f.name), f.data, 0o644); err != nil {
					return fmt.Errorf("data report: %w", err)
				}
			}
			u := d.Union
			if len(d.Roots) == 1 {
				u = d.Roots[0]
			}
			fmt.Fprintf(c.App.Writer, "%s: %d root(s), train %d images, val %d images (%s); %s, %s\n",
				filepath.Join(out, dataReportMD), len(d.Roots), u.Splits[0].Images, u.Splits[1].Images,
				time.Since(start).Round(time.Millisecond), dataReportJSON, dataReportPNG)
			return nil
		},
	}
}
