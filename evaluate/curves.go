package evaluate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/artnet/artnet/models/spec"
)

// Curves are the series of a training run's metrics.jsonl (train.StepMetrics and
// train.EvalMetrics lines), ordered by step.
type Curves struct {
	Steps    []float64            // training steps
	Loss     []float64            // total loss per training step
	TaskLoss map[string][]float64 // per task, aligned with Steps (NaN where a line lacks it)
	EvalStep []float64            // evaluation steps
	Accuracy map[string][]float64 // validation accuracy per task, aligned with EvalStep (NaN where missing)
}

// metricsLine is the union of the fields plotted from either kind of line.
type metricsLine struct {
	Kind     string             `json:"kind"`
	Step     *int               `json:"step"`
	Loss     *float64           `json:"loss"`
	TaskLoss map[string]float64 `json:"task_loss"`
	Accuracy map[string]float64 `json:"accuracy"`
}

// ReadCurves reads a trainer's metrics.jsonl. Lines of other kinds are ignored. A step that
// appears more than once (a run resumed from an earlier checkpoint repeats steps) keeps its
// last line. A malformed line is an error naming file:line, except a last line without its
// newline, which a running trainer may be writing: it is ignored.
func ReadCurves(path string) (*Curves, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	train := map[int]metricsLine{}
	eval := map[int]metricsLine{}
	lines := bytes.Split(b, []byte{'\n'})
	for i, l := range lines {
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		var m metricsLine
		if err := json.Unmarshal(l, &m); err != nil {
			if i == len(lines)-1 { // no newline after it: still being written
				continue
			}
			return nil, fmt.Errorf("plot: %s:%d: not a JSON object: %v", path, i+1, err)
		}
		switch m.Kind {
		case "train":
			if m.Step == nil || m.Loss == nil {
				return nil, fmt.Errorf("plot: %s:%d: a train line needs \"step\" and \"loss\"", path, i+1)
			}
			train[*m.Step] = m
		case "eval":
			if m.Step == nil {
				return nil, fmt.Errorf("plot: %s:%d: an eval line needs \"step\"", path, i+1)
			}
			eval[*m.Step] = m
		}
	}
	if len(train) == 0 && len(eval) == 0 {
		return nil, fmt.Errorf("plot: %s: no \"train\" or \"eval\" lines", path)
	}
	c := &Curves{TaskLoss: map[string][]float64{}, Accuracy: map[string][]float64{}}
	for _, s := range sortedKeys(train) {
		m := train[s]
		c.Steps = append(c.Steps, float64(s))
		c.Loss = append(c.Loss, *m.Loss)
		for _, t := range spec.Tasks {
			v, ok := m.TaskLoss[t]
			if !ok {
				v = nan
			}
			c.TaskLoss[t] = append(c.TaskLoss[t], v)
		}
	}
	for _, s := range sortedKeys(eval) {
		m := eval[s]
		c.EvalStep = append(c.EvalStep, float64(s))
		for _, t := range spec.Tasks {
			v, ok := m.Accuracy[t]
			if !ok {
				v = nan
			}
			c.Accuracy[t] = append(c.Accuracy[t], v)
		}
	}
	return c, nil
}

var nan = func() float64 { var z float64; return z / z }()

func sortedKeys(m map[int]metricsLine) []int {
	k := make([]int, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Ints(k)
	return k
}

// taskColors are the colours of style, genre and artist; the total loss is black.
var taskColors = map[string]color.Color{
	"style":  color.RGBA{R: 31, G: 119, B: 180, A: 255},
	"genre":  color.RGBA{R: 255, G: 127, B: 14, A: 255},
	"artist": color.RGBA{R: 44, G: 160, B: 44, A: 255},
}

// PlotCurves draws the losses (total and per task) over steps above the validation accuracy
// per task, as a PNG of widthPx × heightPx pixels.
func PlotCurves(c *Curves, title string, widthPx, heightPx int) (png []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			png, err = nil, fmt.Errorf("plot: %v", r)
		}
	}()
	if widthPx < 200 || heightPx < 200 {
		return nil, fmt.Errorf("plot: image size %d×%d, want at least 200×200", widthPx, heightPx)
	}
	loss := plot.New()
	loss.Title.Text = title
	loss.X.Label.Text = "step"
	loss.Y.Label.Text = "loss"
	loss.Legend.Top = true
	loss.Add(plotter.NewGrid())
	if err := addLine(loss, c.Steps, c.Loss, "total (uncertainty-weighted)", color.Black, 1.5); err != nil {
		return nil, err
	}
	for _, t := range spec.Tasks {
		if err := addLine(loss, c.Steps, c.TaskLoss[t], t, taskColors[t], 1); err != nil {
			return nil, err
		}
	}
	acc := plot.New()
	acc.Title.Text = "validation accuracy (top-1)"
	acc.X.Label.Text = "step"
	acc.Y.Label.Text = "accuracy"
	acc.Y.Min, acc.Y.Max = 0, 1
	acc.Legend.Top = true
	acc.Legend.Left = true
	acc.Add(plotter.NewGrid())
	for _, t := range spec.Tasks {
		if err := addLine(acc, c.EvalStep, c.Accuracy[t], t, taskColors[t], 1.5); err != nil {
			return nil, err
		}
	}
	if len(c.EvalStep) == 0 {
		acc.Title.Text = "validation accuracy: no evaluation in the metrics file"
	}
	// Both panels share the step range.
	lo, hi := 0.0, 1.0
	all := append(append([]float64{}, c.Steps...), c.EvalStep...)
	if len(all) > 0 {
		lo, hi = all[0], all[0]
		for _, s := range all {
			lo, hi = min(lo, s), max(hi, s)
		}
		if hi == lo {
			hi = lo + 1
		}
	}
	for _, p := range []*plot.Plot{loss, acc} {
		p.X.Min, p.X.Max = lo, hi
	}
	const dpi = 96
	w, h := vg.Length(widthPx)*vg.Inch/dpi, vg.Length(heightPx)*vg.Inch/dpi
	cv := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))}
	dc := draw.New(cv)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{loss}, {acc}}, tiles, dc)
	loss.Draw(canvases[0][0])
	acc.Draw(canvases[1][0])
	var b bytes.Buffer
	if _, err := cv.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	return b.Bytes(), nil
}

// addLine adds a line of the finite points of (xs, ys) with a legend entry; nothing when there
// are none.
func addLine(p *plot.Plot, xs, ys []float64, name string, col color.Color, width float64) error {
	var pts plotter.XYs
	for i := range xs {
		if i < len(ys) && ys[i] == ys[i] && ys[i] < 1e300 && ys[i] > -1e300 {
			pts = append(pts, plotter.XY{X: xs[i], Y: ys[i]})
		}
	}
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = col
	l.Width = vg.Points(width)
	p.Add(l)
	p.Legend.Add(name, l)
	if len(pts) <= 30 { // few points (evaluations): mark them
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		s.Color = col
		s.Radius = vg.Points(2)
		p.Add(s)
	}
	return nil
}
