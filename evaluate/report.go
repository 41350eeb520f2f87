package evaluate

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/artnet/artnet/internal/atomicfile"
)

// Files written by WriteReport into the output folder.
const (
	SummaryFile = "summary.json"
)

// ConfusionCSV and ConfusionPNG name a task's confusion matrix files.
func ConfusionCSV(task string) string { return "confusion_" + task + ".csv" }

// ConfusionPNG names a task's confusion heat map.
func ConfusionPNG(task string) string { return "confusion_" + task + ".png" }

// WriteReport writes summary.json, and per task the confusion matrix as CSV and as a PNG heat
// map, into dir (created if needed). Every file is written atomically.
func WriteReport(dir string, s *Summary) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("evaluate: output folder: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("evaluate: %s: %w", SummaryFile, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, SummaryFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	for _, t := range s.Tasks {
		if t.Confusion == nil {
			continue
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, ConfusionCSV(t.Task)), t.Confusion.CSV(), 0o644); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		png, err := t.Confusion.HeatMapPNG(fmt.Sprintf("%s: %d samples, top-1 %.1f%%\ncolour: fraction of the true class's row (diagonal outlined); grey: class absent", t.Task, t.Samples, 100*t.Top1))
		if err != nil {
			return fmt.Errorf("evaluate: %s: %w", ConfusionPNG(t.Task), err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, ConfusionPNG(t.Task)), png, 0o644); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
	}
	return nil
}

// CSV renders the matrix: a header "truth\predicted" followed by the class names, then one
// row per true class (its name, then the counts).
func (c *Confusion) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(append([]string{`truth\predicted`}, c.Classes...))
	for i, r := range c.M {
		rec := make([]string, 0, len(r)+1)
		rec = append(rec, c.Classes[i])
		for _, v := range r {
			rec = append(rec, strconv.Itoa(v))
		}
		_ = w.Write(rec)
	}
	w.Flush()
	return b.Bytes()
}

// ReadConfusionCSV parses what CSV writes; errors name file and line.
func ReadConfusionCSV(path string) (*Confusion, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("evaluate: %s: %w", path, err)
	}
	if len(recs) < 1 || len(recs[0]) < 2 {
		return nil, fmt.Errorf("evaluate: %s: no header with class names", path)
	}
	c := NewConfusion(recs[0][1:])
	if len(recs)-1 != len(c.Classes) {
		return nil, fmt.Errorf("evaluate: %s: %d rows for %d classes", path, len(recs)-1, len(c.Classes))
	}
	for i, rec := range recs[1:] {
		if rec[0] != c.Classes[i] {
			return nil, fmt.Errorf("evaluate: %s:%d: row class %q, want %q", path, i+2, rec[0], c.Classes[i])
		}
		for j, s := range rec[1:] {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("evaluate: %s:%d: column %d: %q is not a count", path, i+2, j+2, s)
			}
			c.M[i][j] = v
		}
	}
	return c, nil
}

// rowGrid is a confusion matrix as a heat-map grid: column c is the predicted class, row r
// (drawn bottom-up) the true class n-1-r, so that class 0 is on top; values are row-normalized.
type rowGrid struct{ c *Confusion }

func (g rowGrid) Dims() (int, int) { n := len(g.c.Classes); return n, n }
func (g rowGrid) X(c int) float64  { return float64(c) }
func (g rowGrid) Y(r int) float64  { return float64(r) }
func (g rowGrid) Z(c, r int) float64 {
	n := len(g.c.Classes)
	row := g.c.M[n-1-r]
	s := 0
	for _, v := range row {
		s += v
	}
	if s == 0 {
		return math.NaN()
	}
	return float64(row[c]) / float64(s)
}
func (g rowGrid) Min() float64 { return 0 }
func (g rowGrid) Max() float64 { return 1 }

// bluePalette goes from white (0) to dark blue (1).
type bluePalette struct{}

func (bluePalette) Colors() []color.Color {
	const n = 64
	out := make([]color.Color, n)
	for i := range out {
		t := float64(i) / (n - 1)
		out[i] = color.RGBA{R: uint8(255 - t*(255-8)), G: uint8(255 - t*(255-48)), B: uint8(255 - t*(255-107)), A: 255}
	}
	return out
}

// HeatMapPNG draws the matrix as a PNG heat map: rows are true classes (top to bottom), columns
// predicted classes, colours the row-normalized fraction (the recall on the diagonal), counts
// written in the cells when there are at most 30 classes; rows without samples are grey.
func (c *Confusion) HeatMapPNG(title string) (png []byte, err error) {
	defer func() { // gonum/plot reports some drawing problems by panicking
		if r := recover(); r != nil {
			png, err = nil, fmt.Errorf("heat map: %v", r)
		}
	}()
	n := len(c.Classes)
	if n == 0 {
		return nil, fmt.Errorf("heat map: no classes")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	h := plotter.NewHeatMap(rowGrid{c}, bluePalette{})
	h.NaN = color.RGBA{R: 225, G: 225, B: 225, A: 255}
	h.Rasterized = false
	p.Add(h)
	var xt, yt []plot.Tick
	for i, name := range c.Classes {
		xt = append(xt, plot.Tick{Value: float64(i), Label: shorten(name, 22)})
		yt = append(yt, plot.Tick{Value: float64(n - 1 - i), Label: shorten(name, 22)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	p.X.Padding, p.Y.Padding = 0, 0
	for i := 0; i < n; i++ { // outline the diagonal (correct predictions)
		x, y := float64(i), float64(n-1-i)
		box, err := plotter.NewPolygon(plotter.XYs{{X: x - 0.5, Y: y - 0.5}, {X: x + 0.5, Y: y - 0.5}, {X: x + 0.5, Y: y + 0.5}, {X: x - 0.5, Y: y + 0.5}})
		if err != nil {
			return nil, err
		}
		box.Color = nil
		box.LineStyle.Color = color.RGBA{R: 200, G: 60, B: 30, A: 255}
		box.LineStyle.Width = vg.Points(0.8)
		p.Add(box)
	}
	if n <= 30 {
		var xys plotter.XYLabels
		for i := 0; i < n; i++ {
			s := 0
			for _, v := range c.M[i] {
				s += v
			}
			for j := 0; j < n; j++ {
				if c.M[i][j] == 0 {
					continue
				}
				xys.XYs = append(xys.XYs, plotter.XY{X: float64(j), Y: float64(n - 1 - i)})
				xys.Labels = append(xys.Labels, strconv.Itoa(c.M[i][j]))
			}
		}
		if len(xys.XYs) > 0 {
			l, err := plotter.NewLabels(xys)
			if err != nil {
				return nil, err
			}
			size := vg.Points(math.Max(5, math.Min(10, 200/float64(n))))
			for i := range l.TextStyle {
				l.TextStyle[i].Font.Size = size
				l.TextStyle[i].XAlign = draw.XCenter
				l.TextStyle[i].YAlign = draw.YCenter
				// white on dark cells
				r := int(l.XYs[i].Y)
				row := c.M[n-1-r]
				s := 0
				for _, v := range row {
					s += v
				}
				if s > 0 && float64(row[int(l.XYs[i].X)])/float64(s) > 0.55 {
					l.TextStyle[i].Color = color.White
				}
			}
			p.Add(l)
		}
	}
	side := vg.Length(440 + 22*n)
	if side > 1100 {
		side = 1100
	}
	return renderPNG(p, side, side)
}

// renderPNG draws p at w×h points and 96 dpi (w·96/72 × h·96/72 pixels).
func renderPNG(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	cv := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))}
	p.Draw(draw.New(cv))
	var b bytes.Buffer
	if _, err := cv.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "_", " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
