package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/models"
)

// summaryCommand is `artnet model summary` (register it as a subcommand of a "model" command,
// or top level): per-module parameter counts and output shapes of a DeepArtNet configuration,
// from its graph alone (nothing is initialized or run).
func summaryCommand() *cli.Command {
	return &cli.Command{
		Name:      "summary",
		Usage:     "print a model's modules with parameter counts and output shapes (one image; builds the graph only)",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "variant", Usage: "EfficientNet variant b0..b4 (default b4, the spec's; not with --model-config)"},
			&cli.StringFlag{Name: "model-config", Usage: "JSON model configuration (spec.Config), e.g. a checkpoint's config.json"},
			&cli.IntFlag{Name: "image-size", Usage: "input size H = W (default: the configuration's)"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := importConfig(c.String("variant"), c.String("model-config"), c.Int("image-size"), "")
			if err != nil {
				return err
			}
			s, err := models.Summarize(cfg)
			if err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "DeepArtNet %s (width %g, depth %g, %d stages), input 1×3×%d×%d\n\n",
				cfg.Variant, cfg.Width(), cfg.Depth(), cfg.NumStages(), cfg.ImageSize, cfg.ImageSize)
			rows := [][4]string{{"module", "", "parameters", "output"}}
			for _, m := range s.Modules {
				rows = append(rows, [4]string{m.Module, m.What, thousands(m.Params), shapeString(m.Output)})
			}
			var wd [4]int
			for _, r := range rows {
				for i, f := range r {
					wd[i] = max(wd[i], utf8.RuneCountInString(f))
				}
			}
			pad := func(s string, n int) string { return strings.Repeat(" ", n-utf8.RuneCountInString(s)) }
			for _, r := range rows {
				fmt.Fprintf(w, "%s%s  %s%s  %s%s  %s%s\n", r[0], pad(r[0], wd[0]), r[1], pad(r[1], wd[1]),
					pad(r[2], wd[2]), r[2], pad(r[3], wd[3]), r[3])
			}
			fmt.Fprintln(w)
			for _, p := range []string{models.PartBackbone, models.PartProj, models.PartEncoder, models.PartAttention, models.PartHeads, models.PartTotal} {
				fmt.Fprintf(w, "%-10s %12s\n", p, thousands(s.Counts[p]))
			}
			return nil
		},
	}
}

// thousands formats n with comma separators: 17548616 → "17,548,616".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func shapeString(d []int) string {
	p := make([]string, len(d))
	for i, v := range d {
		p[i] = strconv.Itoa(v)
	}
	return strings.Join(p, "×")
}
