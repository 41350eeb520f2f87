package wikiart

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// rangesCover checks that from's ranges tile [0, n) in order, each sample in range k being of
// root k (root 0's samples carry no Images; root k's carry images[k]).
func rangesCover(t *testing.T, what string, s *Split, from [][2]int, images []string) {
	t.Helper()
	n := 0
	for k, r := range from {
		if r[0] != n || r[1] < r[0] {
			t.Fatalf("%s: root %d range %v after %d", what, k+1, r, n)
		}
		for _, x := range s.Samples[r[0]:r[1]] {
			want := ""
			if k > 0 {
				want = images[k]
			}
			if x.Images != want {
				t.Fatalf("%s: sample %s in root %d's range carries image folder %q, want %q", what, x.Path, k+1, x.Images, want)
			}
		}
		n = r[1]
	}
	if n != len(s.Samples) {
		t.Fatalf("%s: ranges end at %d, %d samples", what, n, len(s.Samples))
	}
}

// A style-only root joins the sample: its images have genre and artist masked, carry their own
// image folder, and come after the first root's, which loads as alone.
func TestLoadRootsStyleOnly(t *testing.T) {
	sample := testenv.Sample(t)
	// Without a class file: the first root's lists are used.
	extra := makeExtraRoot(t, "", smallExtraTrain, smallExtraVal)
	alone, err := LoadRoots([]Options{{Root: sample, Disjoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRoots([]Options{{Root: sample, Disjoint: true}, {Root: extra, Disjoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	ex := expectRoot(t, extra, filepath.Join(extra, "images"), true, false)
	images := []string{filepath.Join(sample, "images"), filepath.Join(extra, "images")}
	for si, s := range []*Split{r.Train, r.Val} {
		from := [][][2]int{r.TrainFrom, r.ValFrom}[si]
		rangesCover(t, s.Name, s, from, images)
		first := []*Split{alone.Train, alone.Val}[si]
		if from[0][1] != len(first.Samples) {
			t.Errorf("%s: first root has %d samples, %d alone", s.Name, from[0][1], len(first.Samples))
		}
		got := s.Samples[from[1][0]:from[1][1]]
		if len(got) != len(ex.labels[si]) {
			t.Errorf("%s: extra root gives %d samples, test counts %d", s.Name, len(got), len(ex.labels[si]))
		}
		for _, x := range got {
			want, ok := ex.labels[si][x.Path]
			if !ok || x.Labels != want || x.Has(Genre) || x.Has(Artist) || !x.Has(Style) {
				t.Errorf("%s: extra sample %s labels %v, test: %v (listed %v); genre and artist must be masked", s.Name, x.Path, x.Labels, want, ok)
			}
			if _, err := os.Stat(x.File(images[0])); err != nil {
				t.Errorf("%s: extra sample's file: %v", s.Name, err)
			}
		}
	}
	rep := r.Reports[1]
	for _, task := range []int{Genre, Artist} {
		for _, split := range SplitNames {
			if f := rep.File(FileName(task, split)); f == nil || !f.Absent || f.Labels != 0 {
				t.Errorf("extra root: %s reported %+v, want absent", FileName(task, split), f)
			}
		}
	}
	if r.Classes["genre"] == nil || len(r.Classes["style"]) != len(alone.Classes["style"]) {
		t.Errorf("classes %v", r.Classes)
	}
	if r.CrossRoot != 0 {
		t.Errorf("CrossRoot %d between disjoint roots", r.CrossRoot)
	}
}

// A class file that differs from the first root's is refused with one line naming the file.
func TestLoadRootsClassMismatch(t *testing.T) {
	sample := testenv.Sample(t)
	extra := makeExtraRoot(t, sample, smallExtraTrain, smallExtraVal)
	classFile := filepath.Join(extra, ClassFileName(Style))
	b, err := os.ReadFile(classFile)
	if err != nil {
		t.Fatal(err)
	}
	// Two names swapped: same count, different lists.
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	n0, n1 := strings.Fields(lines[0])[1], strings.Fields(lines[1])[1]
	lines[0], lines[1] = strings.Replace(lines[0], n0, n1, 1), strings.Replace(lines[1], n1, n0, 1)
	if err := os.WriteFile(classFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadRoots([]Options{{Root: sample}, {Root: extra}})
	if err == nil {
		t.Fatal("mismatched class list accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, classFile) || strings.Contains(msg, "\n") || !strings.Contains(msg, "data root 2") {
		t.Errorf("error %q: want one line naming %s and the root", msg, classFile)
	}
	// A root without any split file is refused too, naming it.
	empty := t.TempDir()
	if _, err := LoadRoots([]Options{{Root: sample}, {Root: empty}}); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("root without split files: %v", err)
	}
	if _, err := LoadRoots(nil); err == nil {
		t.Error("no root accepted")
	}
}

// With Disjoint, a train image of the first root that a later root's val split lists (the same
// file: here the later root shares the first's image folder) is dropped and counted, and the
// ranges still tile the split.
func TestLoadRootsCrossRootDrop(t *testing.T) {
	sample := testenv.Sample(t)
	sampleImages := filepath.Join(sample, "images")
	first, err := LoadRoots([]Options{{Root: sample, Disjoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	// The later root's val lists the first two train images of the sample (style labels), and
	// trains on one of its val images.
	var val, train strings.Builder
	for _, x := range first.Train.Samples[:2] {
		if !x.Has(Style) {
			t.Fatalf("sample train image %s has no style label", x.Path)
		}
		val.WriteString(x.Path + "," + strconv.Itoa(x.Labels[Style]) + "\n")
	}
	v := first.Val.Samples[0]
	train.WriteString(v.Path + "," + strconv.Itoa(max(v.Labels[Style], 0)) + "\n")
	dir := t.TempDir()
	for name, body := range map[string]string{"style_val.csv": val.String(), "style_train.csv": train.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, disjoint := range []bool{true, false} {
		r, err := LoadRoots([]Options{{Root: sample, Disjoint: disjoint}, {Root: dir, Images: sampleImages, Disjoint: disjoint}})
		if err != nil {
			t.Fatal(err)
		}
		wantDrop := 0
		if disjoint {
			wantDrop = 3 // two first-root train images, and the later root's own train image (in the first root's val)
		}
		if r.CrossRoot != wantDrop {
			t.Errorf("disjoint=%v: CrossRoot %d, want %d", disjoint, r.CrossRoot, wantDrop)
		}
		if got, want := len(r.Train.Samples), len(first.Train.Samples)+1-wantDrop; got != want {
			t.Errorf("disjoint=%v: %d train samples, want %d", disjoint, got, want)
		}
		rangesCover(t, "train", r.Train, r.TrainFrom, []string{sampleImages, sampleImages})
		rangesCover(t, "val", r.Val, r.ValFrom, []string{sampleImages, sampleImages})
		inVal := map[string]bool{}
		for _, x := range r.Val.Samples {
			inVal[x.File(sampleImages)] = true
		}
		for _, x := range r.Train.Samples {
			if disjoint && inVal[x.File(sampleImages)] {
				t.Errorf("train image %s is in val", x.Path)
			}
		}
	}
}
