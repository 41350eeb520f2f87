package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
)

// PredictOptions plug what one binary has and the other lacks into Predict.
type PredictOptions struct {
	// OpenGoMLX opens a GoMLX checkpoint directory (--runtime gomlx --checkpoint DIR); nil in
	// the lean binary, where --runtime gomlx is refused with a line naming the full binary.
	OpenGoMLX func(dir string) (predict.Predictor, error)
}

// Predict is the `predict` command: it prints one line, or one JSON object
// (predict.Prediction) per image, and writes attention heat maps with --visualize-attention.
// Some images failing is exit status 1 (each named on stderr, the others still predicted).
func Predict(o PredictOptions) *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "predict style, genre and artist of images",
		ArgsUsage: "IMAGE...",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "runtime", Value: "onnx", Usage: "onnx (ONNX Runtime) or gomlx (the full artnet binary only)"},
			&cli.StringFlag{Name: "checkpoint", Usage: "GoMLX checkpoint directory (with --runtime gomlx)"},
			&cli.IntFlag{Name: "topk", Value: 1, Usage: "also list the k most probable classes per task"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per image on stdout"},
			&cli.BoolFlag{Name: "attention", Usage: "include the attention weights in --json output"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per model run"},
			&cli.StringFlag{Name: "visualize-attention", Usage: "write the attention heatmap over the painting: a PNG `FILE` for one image, or a folder (FOLDER/<name>.heatmap.png, <name>-2… when inputs share a name; --json names each file) for several"},
		}, RuntimeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("predict: no image given (usage: %s predict --model FILE.onnx IMAGE...)", c.App.Name)
			}
			if c.Int("batch") < 1 {
				return fmt.Errorf("flag --batch: must be >= 1, got %d", c.Int("batch"))
			}
			if c.Int("topk") < 1 {
				return fmt.Errorf("flag --topk: must be >= 1, got %d", c.Int("topk"))
			}
			fo := predict.FilesOptions{TopK: c.Int("topk"), Attention: c.Bool("attention"), Batch: c.Int("batch")}
			enc := json.NewEncoder(c.App.Writer)
			fo.Emit = func(p *predict.Prediction) error {
				if c.Bool("json") {
					return enc.Encode(p)
				}
				_, err := fmt.Fprintln(c.App.Writer, textLine(p))
				return err
			}
			fo.Failed = func(path string, err error) {
				fmt.Fprintf(c.App.ErrWriter, "predict: %s\n", errtext.OneLine(err))
			}
			if v := c.String("visualize-attention"); v != "" {
				if st, err := os.Stat(v); (err == nil && st.IsDir()) || c.NArg() > 1 || !strings.EqualFold(filepath.Ext(v), ".png") {
					if err := os.MkdirAll(v, 0o755); err != nil {
						return fmt.Errorf("flag --visualize-attention: %w", err)
					}
					fo.HeatmapDir = v
				} else {
					fo.HeatmapFile = v
				}
			}
			p, err := openPredictor(c, o)
			if err != nil {
				return err
			}
			pl, err := predict.NewPipeline(p)
			if err == nil {
				err = predict.Files(c.Context, pl, c.Args().Slice(), fo)
			}
			if errors.Is(err, predict.ErrImagesFailed) {
				err = &ExitError{Code: 1, Msg: err.Error()}
			}
			return closeJoin(err, p)
		},
	}
}

func openPredictor(c *cli.Context, o PredictOptions) (predict.Predictor, error) {
	switch c.String("runtime") {
	case "onnx":
		if c.String("checkpoint") != "" {
			return nil, errors.New("predict: --checkpoint is read by --runtime gomlx only; with ONNX Runtime give --model FILE.onnx")
		}
		return OpenModel(c)
	case "gomlx":
		if o.OpenGoMLX == nil {
			return nil, fmt.Errorf("flag --runtime: gomlx is not in %s (the lean serving binary); use the full artnet binary", c.App.Name)
		}
		if c.String("checkpoint") == "" {
			return nil, errors.New("predict: --checkpoint DIR is required with --runtime gomlx")
		}
		return o.OpenGoMLX(c.String("checkpoint"))
	default:
		return nil, fmt.Errorf("flag --runtime: %q is not onnx or gomlx", c.String("runtime"))
	}
}

// textLine is the human-readable line of a prediction.
func textLine(p *predict.Prediction) string {
	var b strings.Builder
	b.WriteString(p.Image)
	b.WriteString(":")
	for i, t := range spec.Tasks {
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
