package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/artnet/artnet/wikiart"
)

// rootColors are the bar colours of the data roots (train; val is the same hue, lighter).
var rootColors = []color.RGBA{
	{R: 31, G: 119, B: 180, A: 255},  // blue
	{R: 255, G: 127, B: 14, A: 255},  // orange
	{R: 44, G: 160, B: 44, A: 255},   // green
	{R: 148, G: 103, B: 189, A: 255}, // purple
	{R: 140, G: 86, B: 75, A: 255},   // brown
	{R: 227, G: 119, B: 194, A: 255}, // pink
}

// lighter mixes c with white.
func lighter(c color.RGBA) color.RGBA {
	mix := func(v uint8) uint8 { return uint8((int(v) + 2*255) / 3) }
	return color.RGBA{R: mix(c.R), G: mix(c.G), B: mix(c.B), A: 255}
}

// logBars is one bar per class at x = class + offset, from the axis minimum up to the count on a
// log axis (plotter.BarChart starts its bars at 0, which a log scale cannot place); a class
// without images gets no bar.
type logBars struct {
	counts []int
	offset float64 // in class units
	width  float64 // in class units
	fill   color.Color
}

func (b *logBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i, n := range b.counts {
		if n <= 0 {
			continue
		}
		x0, x1 := float64(i)+b.offset-b.width/2, float64(i)+b.offset+b.width/2
		y0, y1 := trY(p.Y.Min), trY(math.Min(float64(n), p.Y.Max))
		pts := []vg.Point{{X: trX(x0), Y: y0}, {X: trX(x1), Y: y0}, {X: trX(x1), Y: y1}, {X: trX(x0), Y: y1}}
		c.FillPolygon(b.fill, c.ClipPolygonY(pts))
	}
}

func (b *logBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	ymin, ymax = math.Inf(1), 1
	for _, n := range b.counts {
		if n > 0 {
			ymin, ymax = math.Min(ymin, float64(n)), math.Max(ymax, float64(n))
		}
	}
	if math.IsInf(ymin, 1) {
		ymin = 1
	}
	return -0.5, float64(len(b.counts)) - 0.5, ymin, ymax
}

func (b *logBars) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.FillPolygon(b.fill, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
}

// plotClassCounts draws the images per class of each task (one panel per task, log scale), one
// bar per root and split (train dark, val light), as a PNG of widthPx × heightPx pixels.
func plotClassCounts(d *wikiart.DataReport, widthPx, heightPx int) (png []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			png, err = nil, fmt.Errorf("data report: plot: %v", r)
		}
	}()
	names := d.RootNames()
	var panels [][]*plot.Plot
	for t, task := range wikiart.Tasks {
		classes := d.Classes[task]
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: images per class (%d classes, log scale)", task, len(classes))
		p.Title.TextStyle.Font.Size = vg.Points(13)
		p.Y.Label.Text = "images"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		p.Legend.Left = false
		p.Legend.TextStyle.Font.Size = vg.Points(10)
		p.Add(yGrid{}) // under the bars
		// A slot per root and split that has labels for the task (all of them when none has).
		type series struct{ root, split int }
		var slots, all []series
		for i, r := range d.Roots {
			for si, s := range r.Splits {
				all = append(all, series{i, si})
				if s.Tasks[t].Labelled > 0 {
					slots = append(slots, series{i, si})
				}
			}
		}
		if len(slots) == 0 {
			slots = all
		}
		width := 0.84 / float64(len(slots))
		hi := 1
		for _, sr := range all {
			r, s := d.Roots[sr.root], d.Roots[sr.root].Splits[sr.split]
			col := rootColors[sr.root%len(rootColors)]
			if sr.split == 1 {
				col = lighter(col)
			}
			k := slices.Index(slots, sr)
			bars := &logBars{counts: s.Tasks[t].PerClass, width: width * 0.92, fill: col}
			if k >= 0 {
				bars.offset = (float64(k) - float64(len(slots)-1)/2) * width
				p.Add(bars)
			}
			for _, c := range bars.counts {
				hi = max(hi, c)
			}
			label := fmt.Sprintf("%s %s: %s images", names[sr.root], s.Name, thousands(s.Tasks[t].Labelled))
			if s.Tasks[t].Labelled == 0 && slices.Contains(r.MissingTasks, task) {
				label = fmt.Sprintf("%s %s: no %s labels", names[sr.root], s.Name, task)
			}
			p.Legend.Add(label, bars)
		}
		p.Y.Min, p.Y.Max = 0.7, math.Pow(10, math.Ceil(math.Log10(float64(hi))+0.35))
		p.X.Min, p.X.Max = -0.6, float64(len(classes))-0.4
		ticks := make([]plot.Tick, len(classes))
		for c, name := range classes {
			ticks[c] = plot.Tick{Value: float64(c), Label: name}
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
		p.X.Tick.Label.Font.Size = vg.Points(9)
		panels = append(panels, []*plot.Plot{p})
	}
	const dpi = 96
	w, h := vg.Length(widthPx)*vg.Inch/dpi, vg.Length(heightPx)*vg.Inch/dpi
	cv := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))}
	dc := draw.New(cv)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(4), PadLeft: vg.Points(6), PadRight: vg.Points(10), PadY: vg.Points(14)}
	canvases := plot.Align(panels, tiles, dc)
	for i := range panels {
		panels[i][0].Draw(canvases[i][0])
	}
	var b bytes.Buffer
	if _, err := cv.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("data report: plot: %w", err)
	}
	return b.Bytes(), nil
}

// yGrid draws light horizontal lines at the powers of ten of a log axis.
type yGrid struct{}

func (yGrid) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	sty := draw.LineStyle{Color: color.Gray{Y: 205}, Width: vg.Points(0.5)}
	for v := 1.0; v <= p.Y.Max; v *= 10 {
		if v < p.Y.Min {
			continue
		}
		y := trY(v)
		c.StrokeLine2(sty, c.Min.X, y, c.Max.X, y)
	}
}
