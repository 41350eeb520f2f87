package wikiart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// The data report's expectations are counted by the tests themselves: they parse the CSVs the
// simple way (rawRows), look for each image file with os.Stat, decode images in full with
// image.Decode for their sizes, and merge the labels by path on their own.

// expected is what a test counts for one data root.
type expected struct {
	labels  [2]map[string][3]int // per split: path → labels (Absent where no label)
	sizes   [2]map[string][2]int // per split: path → width, height (decoded images)
	broken  [2]int               // per split: images that do not decode
	missing int                  // distinct labelled paths per file without an image file
	inVal   int                  // train labels removed because val keeps the path
	rows    int
}

// expectRoot counts a root's splits: the rows of each CSV whose image exists under images, a
// path listed with different labels in one file dropped for that task, and with disjoint, train
// labels of paths that val keeps removed. Sizes are decoded when decode is set.
func expectRoot(t *testing.T, root, images string, disjoint, decode bool) expected {
	t.Helper()
	var e expected
	for si, split := range SplitNames {
		e.labels[si] = map[string][3]int{}
		for task := range Tasks {
			name := FileName(task, split)
			if _, err := os.Stat(filepath.Join(root, name)); errors.Is(err, os.ErrNotExist) {
				continue
			}
			byPath := map[string][]int{}
			var order []string
			for _, r := range rawRows(t, root, name) {
				e.rows++
				if _, ok := byPath[r.path]; !ok {
					order = append(order, r.path)
				}
				byPath[r.path] = append(byPath[r.path], r.label)
			}
			for _, p := range order {
				ls := byPath[p]
				if slices.Min(ls) != slices.Max(ls) {
					continue // conflict
				}
				if st, err := os.Stat(filepath.Join(images, filepath.FromSlash(p))); err != nil || !st.Mode().IsRegular() {
					e.missing++
					continue
				}
				l, ok := e.labels[si][p]
				if !ok {
					l = [3]int{Absent, Absent, Absent}
				}
				l[task] = ls[0]
				e.labels[si][p] = l
			}
		}
	}
	if disjoint {
		for p, l := range e.labels[0] {
			if _, ok := e.labels[1][p]; ok {
				for _, x := range l {
					if x != Absent {
						e.inVal++
					}
				}
				delete(e.labels[0], p)
			}
		}
	}
	if decode {
		for si := range SplitNames {
			e.sizes[si] = map[string][2]int{}
			for p := range e.labels[si] {
				f, err := os.Open(filepath.Join(images, filepath.FromSlash(p)))
				if err != nil {
					t.Fatal(err)
				}
				m, _, err := image.Decode(f)
				f.Close()
				if err != nil {
					e.broken[si]++
					continue
				}
				e.sizes[si][p] = [2]int{m.Bounds().Dx(), m.Bounds().Dy()}
			}
		}
	}
	return e
}

// perClass counts the expected labels of task per class.
func (e expected) perClass(si, task, n int) []int {
	c := make([]int, n)
	for _, l := range e.labels[si] {
		if l[task] != Absent {
			c[l[task]]++
		}
	}
	return c
}

// checkSplit compares a split of the report with the expectations of the roots it covers.
func checkSplit(t *testing.T, what string, got SplitStats, si int, classes map[string][]string, es ...expected) {
	t.Helper()
	images := 0
	var byCount [4]int
	var ws, hs []int
	is224, broken := 0, 0
	for _, e := range es {
		images += len(e.labels[si])
		for _, l := range e.labels[si] {
			n := 0
			for _, x := range l {
				if x != Absent {
					n++
				}
			}
			byCount[n]++
		}
		for _, wh := range e.sizes[si] {
			ws, hs = append(ws, wh[0]), append(hs, wh[1])
			if wh == [2]int{224, 224} {
				is224++
			}
		}
		broken += e.broken[si]
	}
	if got.Images != images || got.ByLabelCount != byCount {
		t.Errorf("%s: %d images, by label count %v; test counts %d, %v", what, got.Images, got.ByLabelCount, images, byCount)
	}
	for task, name := range Tasks {
		want := make([]int, len(classes[name]))
		for _, e := range es {
			for c, n := range e.perClass(si, task, len(want)) {
				want[c] += n
			}
		}
		ts := got.Tasks[task]
		if !slices.Equal(ts.PerClass, want) {
			t.Errorf("%s %s: per class %v, test counts %v", what, name, ts.PerClass, want)
		}
		present, lo, hi, labelled := 0, 0, 0, 0
		var absent []string
		for c, n := range want {
			labelled += n
			if n == 0 {
				absent = append(absent, classes[name][c])
				continue
			}
			present++
			if lo == 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
		}
		imb := 0.0
		if present > 0 {
			imb = float64(hi) / float64(lo)
		}
		if ts.Labelled != labelled || ts.Present != present || !slices.Equal(ts.Absent, append([]string{}, absent...)) || ts.Imbalance != imb {
			t.Errorf("%s %s: labelled %d, present %d, absent %v, imbalance %g; test: %d, %d, %v, %g", what, name,
				ts.Labelled, ts.Present, ts.Absent, ts.Imbalance, labelled, present, absent, imb)
		}
		if present > 0 && (want[slices.Index(classes[name], ts.Largest)] != hi || want[slices.Index(classes[name], ts.Smallest)] != lo) {
			t.Errorf("%s %s: largest %s, smallest %s; test: %d and %d images", what, name, ts.Largest, ts.Smallest, hi, lo)
		}
	}
	if es[0].sizes[si] == nil {
		return
	}
	z := got.Sizes
	if z == nil {
		t.Fatalf("%s: no sizes", what)
	}
	slices.Sort(ws)
	slices.Sort(hs)
	med := func(v []int) float64 {
		if len(v)%2 == 1 {
			return float64(v[len(v)/2])
		}
		return float64(v[len(v)/2-1]+v[len(v)/2]) / 2
	}
	if z.Read != len(ws) || z.Unreadable != broken || z.Is224 != is224 {
		t.Errorf("%s: sizes read %d, unreadable %d, 224×224 %d; test decodes %d, fails %d, 224×224 %d", what, z.Read, z.Unreadable, z.Is224, len(ws), broken, is224)
	}
	if len(ws) > 0 {
		wantW := MinMed{ws[0], med(ws), ws[len(ws)-1]}
		wantH := MinMed{hs[0], med(hs), hs[len(hs)-1]}
		if z.Width != wantW || z.Height != wantH {
			t.Errorf("%s: width %+v, height %+v; test %+v, %+v", what, z.Width, z.Height, wantW, wantH)
		}
	}
	if broken > 0 && !strings.Contains(z.FirstError, "/") {
		t.Errorf("%s: first unreadable image error %q does not name the file", what, z.FirstError)
	}
}

// extraImage is one row of the test's extra root: a style label, and an image of w×h pixels in
// format ("png", "jpeg", "gif", "junk" for a file that is no image, "" for no file).
type extraImage struct {
	path   string
	label  int
	w, h   int
	format string
}

// makeExtraRoot writes a style-only data root (style_train.csv, style_val.csv, images/; a copy
// of classFrom's style_class.txt unless classFrom is "") into a temp dir.
func makeExtraRoot(t *testing.T, classFrom string, train, val []extraImage) string {
	t.Helper()
	dir := t.TempDir()
	if classFrom != "" {
		b, err := os.ReadFile(filepath.Join(classFrom, ClassFileName(Style)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ClassFileName(Style)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for si, rows := range [][]extraImage{train, val} {
		var csv strings.Builder
		for _, r := range rows {
			fmt.Fprintf(&csv, "%s,%d\n", r.path, r.label)
			if r.format == "" {
				continue
			}
			p := filepath.Join(dir, "images", filepath.FromSlash(r.path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			m := image.NewRGBA(image.Rect(0, 0, r.w, r.h))
			for i := range m.Pix {
				m.Pix[i] = uint8(i * 7)
			}
			var b bytes.Buffer
			var err error
			switch r.format {
			case "png":
				err = png.Encode(&b, m)
			case "jpeg":
				err = jpeg.Encode(&b, m, nil)
			case "gif":
				err = gif.Encode(&b, m, &gif.Options{NumColors: 16})
			default:
				b.WriteString("not an image")
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, FileName(Style, SplitNames[si])), []byte(csv.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// smallExtra is the test's extra root: four styles the sample lacks, Baroque which it has, a
// repeated row, a row without an image, a train row whose image val lists, an unreadable file,
// sizes other than 224×224 and three image formats.
var (
	smallExtraTrain = []extraImage{
		{"Expressionism/a.png", 9, 300, 200, "png"},
		{"Expressionism/b.jpg", 9, 224, 224, "jpeg"},
		{"Expressionism/b.jpg", 9, 224, 224, ""}, // repeated row
		{"Baroque/c.jpg", 4, 150, 400, "jpeg"},
		{"Baroque/missing.jpg", 4, 0, 0, ""},
		{"Art_Nouveau_Modern/d.png", 3, 224, 224, "png"},
		{"Art_Nouveau_Modern/e.gif", 3, 64, 48, "gif"},
		{"Baroque/f.jpg", 4, 224, 180, "jpeg"},
		{"Symbolism/v2.png", 24, 0, 0, ""}, // also in val (its image is written there)
	}
	smallExtraVal = []extraImage{
		{"Expressionism/v1.jpg", 9, 224, 224, "jpeg"},
		{"Symbolism/v2.png", 24, 500, 333, "png"},
		{"Symbolism/bad.jpg", 24, 0, 0, "junk"},
	}
)

// The report of the repository's sample and a style-only extra root, per root, split and task
// and over the union, equals the test's own counts.
func TestStatsSampleAndExtra(t *testing.T) {
	sample := testenv.Sample(t)
	extra := makeExtraRoot(t, sample, smallExtraTrain, smallExtraVal)
	for _, disjoint := range []bool{true, false} {
		t.Run(fmt.Sprintf("disjoint=%v", disjoint), func(t *testing.T) {
			roots, err := LoadRoots([]Options{{Root: sample, Disjoint: disjoint}, {Root: extra, Disjoint: disjoint}})
			if err != nil {
				t.Fatal(err)
			}
			d, err := Stats(context.Background(), roots, StatsOptions{Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			es := []expected{
				expectRoot(t, sample, filepath.Join(sample, "images"), disjoint, true),
				expectRoot(t, extra, filepath.Join(extra, "images"), disjoint, true),
			}
			if len(d.Roots) != 2 {
				t.Fatalf("%d roots", len(d.Roots))
			}
			for i, rs := range d.Roots {
				for si := range SplitNames {
					checkSplit(t, fmt.Sprintf("root %d %s", i+1, SplitNames[si]), rs.Splits[si], si, roots.Classes, es[i])
				}
				sk := rs.Skipped
				if sk.Rows != es[i].rows || sk.MissingImage != es[i].missing || sk.InVal != es[i].inVal {
					t.Errorf("root %d: skipped %+v; test counts %d rows, %d without image, %d in val", i+1, sk, es[i].rows, es[i].missing, es[i].inVal)
				}
			}
			for si := range SplitNames {
				checkSplit(t, "union "+SplitNames[si], d.Union.Splits[si], si, roots.Classes, es...)
			}
			if got := d.Roots[1].MissingTasks; !slices.Equal(got, []string{"genre", "artist"}) || d.Roots[0].MissingTasks != nil {
				t.Errorf("tasks without files: %v, %v; want none, [genre artist]", d.Roots[0].MissingTasks, got)
			}
			if d.Roots[1].Skipped.Duplicates != 1 {
				t.Errorf("extra root: %d repeated rows, want the 1 written", d.Roots[1].Skipped.Duplicates)
			}
			u := d.Union.Skipped
			if u.Rows != es[0].rows+es[1].rows || u.Total() != d.Roots[0].Skipped.Total()+d.Roots[1].Skipped.Total() {
				t.Errorf("union skipped %+v; roots %+v, %+v", u, d.Roots[0].Skipped, d.Roots[1].Skipped)
			}
			checkMarkdown(t, d)
		})
	}
}

// checkMarkdown reads the per-class tables back from the markdown: each class row lists the
// report's counts for every root and split (and the union), in order.
func checkMarkdown(t *testing.T, d *DataReport) {
	t.Helper()
	md := d.Markdown()
	for _, name := range d.RootNames() {
		if !strings.Contains(md, "| "+name+" |") {
			t.Errorf("markdown does not name root %q", name)
		}
	}
	for task, tname := range Tasks {
		_, table, ok := strings.Cut(md, "### "+tname+": images per class")
		if !ok {
			t.Fatalf("markdown has no %s table", tname)
		}
		for c, class := range d.Classes[tname] {
			_, rest, ok := strings.Cut(table, "\n| "+class+" |")
			if !ok {
				t.Fatalf("markdown %s table has no row %s", tname, class)
			}
			line, _, _ := strings.Cut(rest, "\n")
			cells := strings.Split(strings.Trim(line, " |"), "|")
			var want []string
			stats := append(append([]RootStats{}, d.Roots...), d.Union)
			if len(d.Roots) == 1 {
				stats = stats[:1]
			}
			for _, rs := range stats {
				for _, s := range rs.Splits {
					want = append(want, dash0(s.Tasks[task].PerClass[c]))
				}
			}
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			if !slices.Equal(cells, want) {
				t.Errorf("markdown %s %s: %q, want %q", tname, class, cells, want)
			}
		}
	}
}

// A root whose images were not checked (the repository's CSVs without images) is counted from
// its rows alone, without sizes; NoSizes reads no header.
func TestStatsLabelsOnly(t *testing.T) {
	data := testenv.Data(t)
	roots, err := LoadRoots([]Options{{Root: data, SkipImageCheck: true}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Stats(context.Background(), roots, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for si, s := range d.Roots[0].Splits {
		if s.Sizes != nil {
			t.Errorf("%s: sizes %+v without an image folder", s.Name, s.Sizes)
		}
		split := []*Split{roots.Train, roots.Val}[si]
		if s.Images != len(split.Samples) || s.Images == 0 {
			t.Errorf("%s: %d images, split has %d", s.Name, s.Images, len(split.Samples))
		}
		for task, ts := range s.Tasks {
			// Without images every distinct path of the file is labelled, but one listed with
			// different labels.
			labels := map[string][]int{}
			for _, r := range rawRows(t, data, FileName(task, s.Name)) {
				labels[r.path] = append(labels[r.path], r.label)
			}
			want := 0
			for _, ls := range labels {
				if slices.Min(ls) == slices.Max(ls) {
					want++
				}
			}
			if ts.Labelled != want {
				t.Errorf("%s %s: %d labelled, the file has %d distinct paths with one label", s.Name, Tasks[task], ts.Labelled, want)
			}
		}
	}
	sample := testenv.Sample(t)
	roots, err = LoadRoots([]Options{{Root: sample}})
	if err != nil {
		t.Fatal(err)
	}
	d, err = Stats(context.Background(), roots, StatsOptions{NoSizes: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Roots[0].Splits[0].Sizes != nil || d.Union.Splits[1].Sizes != nil {
		t.Error("NoSizes: sizes reported")
	}
}

// A cancelled context stops the header reads with its error.
func TestStatsCancelled(t *testing.T) {
	roots, err := LoadRoots([]Options{{Root: testenv.Sample(t)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Stats(ctx, roots, StatsOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stats with a cancelled context: %v", err)
	}
	if _, err := Stats(context.Background(), nil, StatsOptions{}); err == nil {
		t.Fatal("Stats(nil): no error")
	}
}

func TestMinMedAndNum(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want MinMed
	}{{nil, MinMed{}}, {[]int{5}, MinMed{5, 5, 5}}, {[]int{4, 1, 3}, MinMed{1, 3, 4}}, {[]int{4, 1, 2, 10}, MinMed{1, 3, 10}}} {
		if got := minMed(append([]int{}, tc.in...)); got != tc.want {
			t.Errorf("minMed(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 12903: "12,903", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}
