package wikiart

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
)

// Label-only tests read the repository's data/wikiart (the real split CSVs, byte-for-byte);
// tests of the image check need the full image set (testenv.WikiArt: integration tests) or use
// the repository's sample, testdata/wikiart. Expected image counts are always counted by the
// test from the CSVs and the files on disk (expectImages), never written down.

// readmeRows are the row counts stated in data/wikiart/README.md.
var readmeRows = map[string]int{
	"style_train.csv": 57025, "style_val.csv": 24421,
	"genre_train.csv": 45503, "genre_val.csv": 19492,
	"artist_train.csv": 13346, "artist_val.csv": 5706,
}

type loaded struct {
	train, val *Split
	classes    map[string][]string
	rep        *Report
	err        error
}

var (
	labelsOnce, imagesOnce sync.Once
	labelsOnly, withImages loaded
)

// loadLabels loads the repository's real splits without checking images (once per test binary).
func loadLabels(t *testing.T) loaded {
	t.Helper()
	root := testenv.Data(t)
	labelsOnce.Do(func() {
		var l loaded
		l.train, l.val, l.classes, l.rep, l.err = Load(Options{Root: root, SkipImageCheck: true})
		labelsOnly = l
	})
	if labelsOnly.err != nil {
		t.Fatal(labelsOnly.err)
	}
	return labelsOnly
}

// loadImages loads the full WikiArt folder (integration: testenv.WikiArt) keeping only rows
// whose image is on disk; it returns the folder too.
func loadImages(t *testing.T) (loaded, string) {
	t.Helper()
	root := testenv.WikiArt(t)
	imagesOnce.Do(func() {
		var l loaded
		l.train, l.val, l.classes, l.rep, l.err = Load(Options{Root: root})
		withImages = l
	})
	if withImages.err != nil {
		t.Fatal(withImages.err)
	}
	return withImages, root
}

// rawRow is a data row parsed by the tests independently of the package's parser.
type rawRow struct {
	path  string
	label int
}

// rawRows reads a split file the simple way: split on '\n', drop '\r', skip empty lines and
// the "(Path to image)" header; path is before the first comma, label after the last one.
func rawRows(t *testing.T, root, name string) []rawRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []rawRow
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimRight(l, "\r")
		if len(l) == 0 || l[0] == '(' {
			continue
		}
		s := string(l)
		n, err := strconv.Atoi(s[strings.LastIndexByte(s, ',')+1:])
		if err != nil {
			t.Fatalf("%s: test's own parse failed on %q", name, s)
		}
		out = append(out, rawRow{path: s[:strings.IndexByte(s, ',')], label: n})
	}
	return out
}

func nonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func TestTasksMatchSpec(t *testing.T) {
	if len(spec.Tasks) != len(Tasks) {
		t.Fatalf("spec.Tasks %v, wikiart.Tasks %v", spec.Tasks, Tasks)
	}
	for i := range Tasks {
		if spec.Tasks[i] != Tasks[i] {
			t.Fatalf("task %d: spec %q, wikiart %q", i, spec.Tasks[i], Tasks[i])
		}
	}
}

func TestRealClassLists(t *testing.T) {
	want := map[string]int{"style": spec.NumStyles, "genre": spec.NumGenres, "artist": spec.NumArtists}
	for task, n := range want {
		c, err := ReadClasses(filepath.Join(testenv.Data(t), task+"_class.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != n {
			t.Errorf("%s: %d classes, want %d", task, len(c), n)
		}
	}
	l := loadLabels(t)
	if got := l.classes["style"][3]; got != "Art_Nouveau" {
		t.Errorf("style class 3 = %q, want Art_Nouveau", got)
	}
	if l.rep.FolderMismatch != 0 {
		t.Errorf("%d style rows outside their style's folder, first %+v", l.rep.FolderMismatch, l.rep.FolderMismatchExamples)
	}
}

// Every file's rows as counted independently equal the README's and the reader's, and each
// task's labels equal the rows minus what the report says it skipped.
func TestRealRowCounts(t *testing.T) {
	l := loadLabels(t)
	if len(l.rep.Files) != 6 {
		t.Fatalf("%d file reports, want 6", len(l.rep.Files))
	}
	for _, split := range []*Split{l.train, l.val} {
		for task := range Tasks {
			name := FileName(task, split.Name)
			fr := l.rep.File(name)
			raw := rawRows(t, testenv.Data(t), name)
			if len(raw) != readmeRows[name] || fr.Rows != len(raw) {
				t.Errorf("%s: reader %d rows, test's count %d, README %d", name, fr.Rows, len(raw), readmeRows[name])
			}
			if got, want := split.Count(task), fr.Rows-fr.Skipped(); got != want || fr.Labels != got {
				t.Errorf("%s: %d samples with a %s label, report: %d rows - %d skipped = %d, labels %d",
					name, got, Tasks[task], fr.Rows, fr.Skipped(), want, fr.Labels)
			}
			if fr.MissingImage != 0 || fr.InVal != 0 {
				t.Errorf("%s: labels-only load skipped %d for missing images, %d for val", name, fr.MissingImage, fr.InVal)
			}
			// Per-class counts and labels agree with the test's own parse (conflicts aside).
			conflicted := map[string]bool{}
			for _, c := range l.rep.Conflicts {
				if c.File == name {
					conflicted[c.Path] = true
				}
			}
			perClass := make([]int, len(l.classes[Tasks[task]]))
			labelOf := map[string]int{}
			for _, r := range raw {
				if !conflicted[r.path] {
					perClass[r.label]++
					labelOf[r.path] = r.label
				}
			}
			for c := range perClass {
				if perClass[c] != fr.PerClass[c] || perClass[c] != split.ClassCounts(task, len(perClass))[c] {
					t.Errorf("%s class %d: test counts %d, report %d", name, c, perClass[c], fr.PerClass[c])
				}
			}
			n := 0
			for _, s := range split.Samples {
				if s.Has(task) {
					n++
					if want, ok := labelOf[s.Path]; !ok || want != s.Labels[task] {
						t.Fatalf("%s: sample %q has %s label %d, file says %d (listed %v)", name, s.Path, Tasks[task], s.Labels[task], want, ok)
					}
				}
			}
			if n != len(labelOf) {
				t.Errorf("%s: %d samples labelled, file has %d distinct unconflicted paths", name, n, len(labelOf))
			}
		}
	}
}

// The merged splits hold one sample per distinct path of the split's three files.
func TestRealMerge(t *testing.T) {
	l := loadLabels(t)
	for _, split := range []*Split{l.train, l.val} {
		paths := map[string]bool{}
		for task := range Tasks {
			for _, r := range rawRows(t, testenv.Data(t), FileName(task, split.Name)) {
				paths[r.path] = true
			}
		}
		seen := map[string]bool{}
		for _, s := range split.Samples {
			if seen[s.Path] {
				t.Fatalf("%s: path %q twice", split.Name, s.Path)
			}
			seen[s.Path] = true
			if !paths[s.Path] {
				t.Fatalf("%s: sample %q is in none of the files", split.Name, s.Path)
			}
		}
		// Only the conflicting genre_val path could be lost, and it also has a style label.
		if len(split.Samples) != len(paths) {
			t.Errorf("%s: %d samples, files list %d distinct paths", split.Name, len(split.Samples), len(paths))
		}
	}
	rs := l.rep.Splits
	if len(rs) != 2 || rs[0].Samples != len(l.train.Samples) || rs[1].Samples != len(l.val.Samples) {
		t.Errorf("split reports %+v disagree with the splits (%d, %d)", rs, len(l.train.Samples), len(l.val.Samples))
	}
	if l.rep.CrossSplit == 0 {
		t.Errorf("no path reported in both splits; genre_train lists style_val images")
	}
}

func TestRealConflictingDuplicate(t *testing.T) {
	l := loadLabels(t)
	const p = "Post_Impressionism/maurice-de-vlaminck_the-village.jpg"
	var found *Conflict
	for i, c := range l.rep.Conflicts {
		if c.File == "genre_val.csv" && c.Path == p {
			found = &l.rep.Conflicts[i]
		}
	}
	if found == nil {
		t.Fatalf("conflict on %s in genre_val.csv not reported: %+v", p, l.rep.Conflicts)
	}
	if len(found.Labels) != 2 || found.Labels[0] != 1 || found.Labels[1] != 4 || len(found.Lines) != 2 {
		t.Errorf("conflict %+v, want labels [1 4] on two lines", *found)
	}
	if fr := l.rep.File("genre_val.csv"); fr.ConflictRows != 2 {
		t.Errorf("genre_val.csv: %d conflict rows, want 2", fr.ConflictRows)
	}
	for _, s := range l.val.Samples {
		if s.Path == p {
			if s.Labels[Genre] != Absent || !s.Has(Style) {
				t.Errorf("%s: labels %v; policy drops the genre label and keeps the style one", p, s.Labels)
			}
			if !strings.Contains(l.rep.String(), p) {
				t.Errorf("report text does not show the conflict")
			}
			return
		}
	}
	t.Errorf("%s missing from val although style_val.csv lists it", p)
}

// The mojibake paths come back byte for byte: the reader's set of non-ASCII style_train paths
// equals the test's, and there are 489 of them (README).
func TestRealMojibakePaths(t *testing.T) {
	l := loadLabels(t)
	want := map[string]bool{}
	for _, r := range rawRows(t, testenv.Data(t), "style_train.csv") {
		if nonASCII(r.path) {
			want[r.path] = true
		}
	}
	got := 0
	for _, s := range l.train.Samples {
		if s.Has(Style) && nonASCII(s.Path) {
			if !want[s.Path] {
				t.Fatalf("non-ASCII path %q is not byte-exact in style_train.csv", s.Path)
			}
			got++
		}
	}
	if got != len(want) || got != 489 {
		t.Errorf("%d non-ASCII style_train paths read, test counts %d, README 489", got, len(want))
	}
}

// With the full image set: the reader's counts equal the test's own (expectImages), every kept
// sample's file exists, and every non-ASCII image file on disk is matched byte-exactly by a sample.
func TestRealWithImages(t *testing.T) {
	l, root := loadImages(t)
	r := l.rep
	want := expectImages(t, root, filepath.Join(root, "images"))
	checkImageCounts(t, l, want)
	total := 0
	for _, fr := range r.Files {
		if fr.Labels+fr.MissingImage+fr.ConflictRows+fr.Duplicates != fr.Rows {
			t.Errorf("%s: rows %d != labels %d + missing %d + conflict %d + dup %d", fr.File, fr.Rows, fr.Labels, fr.MissingImage, fr.ConflictRows, fr.Duplicates)
		}
		total += fr.MissingImage
	}
	if total != r.Missing || r.Missing == 0 || len(r.MissingExamples) == 0 {
		t.Errorf("missing: files sum %d, report %d, %d examples", total, r.Missing, len(r.MissingExamples))
	}
	images := filepath.Join(root, "images")
	kept := map[string]bool{}
	for _, sp := range []*Split{l.train, l.val} {
		for _, s := range sp.Samples {
			if _, err := os.Stat(s.File(images)); err != nil {
				t.Fatalf("kept sample without its image: %v", err)
			}
			kept[s.Path] = true
		}
	}
	// Non-ASCII file names on disk, listed by directory reads (raw bytes).
	var disk []string
	err := filepath.WalkDir(images, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && nonASCII(d.Name()) {
			disk = append(disk, filepath.Base(filepath.Dir(p))+"/"+d.Name())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(disk) == 0 {
		t.Fatal("no non-ASCII image file names on disk; expected some mojibake names")
	}
	for _, p := range disk {
		if !kept[p] {
			t.Errorf("image file %q has no byte-exact sample", p)
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.Missing != r.Missing || len(back.Files) != 6 {
		t.Errorf("report JSON round trip: %v, missing %d", err, back.Missing)
	}
	t.Logf("train %d samples, val %d samples, %d non-ASCII image names, %d rows without an image",
		len(l.train.Samples), len(l.val.Samples), len(disk), r.Missing)
}

func TestRealStrict(t *testing.T) {
	l, root := loadImages(t)
	_, _, _, rep, err := Load(Options{Root: root, Strict: true})
	if err == nil {
		t.Fatalf("strict load with %d images on disk and %d labels without one succeeded", l.rep.ImagesOnDisk, l.rep.Missing)
	}
	// The first missing row, found independently: style_train.csv is read first.
	first := ""
	for _, r := range rawRows(t, root, "style_train.csv") {
		if _, err := os.Stat(filepath.Join(root, "images", r.path)); err != nil {
			first = r.path
			break
		}
	}
	msg := err.Error()
	if !strings.Contains(msg, first) || !strings.Contains(msg, strconv.Itoa(l.rep.Missing)) || !strings.Contains(msg, "style_train.csv:") {
		t.Errorf("strict error %q should name %q, style_train.csv:line and the count %d", msg, first, l.rep.Missing)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if rep == nil || rep.Missing != l.rep.Missing {
		t.Errorf("strict failure should come with the report")
	}
}

func TestRealDisjoint(t *testing.T) {
	l, root := loadImages(t)
	train, val, _, rep, err := Load(Options{Root: root, Disjoint: true})
	if err != nil {
		t.Fatal(err)
	}
	inVal := map[string]bool{}
	for _, s := range val.Samples {
		inVal[s.Path] = true
	}
	for _, s := range train.Samples {
		if inVal[s.Path] {
			t.Fatalf("Disjoint: %q in train and val", s.Path)
		}
	}
	removed := 0
	for _, fr := range rep.Files {
		removed += fr.InVal
	}
	if rep.CrossSplit == 0 || removed < rep.CrossSplit || len(train.Samples) != len(l.train.Samples)-rep.CrossSplit {
		t.Errorf("cross-split %d, removed rows %d, train %d → %d", rep.CrossSplit, removed, len(l.train.Samples), len(train.Samples))
	}
}

// imageCounts is what a load with images must report, counted by the test itself.
type imageCounts struct {
	onDisk int              // files in the image folders
	style  map[string][]int // split → per-style-class distinct style rows whose image exists
}

// expectImages counts, independently of the reader, the files under images/<folder>/ and, per
// split and style class, the distinct paths of style_<split>.csv (under csvRoot) whose file exists.
func expectImages(t *testing.T, csvRoot, images string) imageCounts {
	t.Helper()
	var c imageCounts
	dirs, err := os.ReadDir(images)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(images, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.Type().IsRegular() {
				c.onDisk++
			}
		}
	}
	c.style = map[string][]int{}
	for _, split := range SplitNames {
		per := make([]int, spec.NumStyles)
		seen := map[string]bool{}
		for _, r := range rawRows(t, csvRoot, FileName(Style, split)) {
			if seen[r.path] {
				continue
			}
			seen[r.path] = true
			if _, err := os.Stat(filepath.Join(images, r.path)); err == nil {
				per[r.label]++
			}
		}
		c.style[split] = per
	}
	return c
}

// checkImageCounts compares a load with images against the test's own counts.
func checkImageCounts(t *testing.T, l loaded, want imageCounts) {
	t.Helper()
	r := l.rep
	if !r.ImagesChecked || r.ImagesOnDisk != want.onDisk || r.Unlisted != 0 {
		t.Fatalf("images checked %v, %d on disk, %d unlisted; test counts %d on disk, all listed", r.ImagesChecked, r.ImagesOnDisk, r.Unlisted, want.onDisk)
	}
	for _, sp := range []*Split{l.train, l.val} {
		got := sp.ClassCounts(Style, spec.NumStyles)
		total := 0
		for c, n := range want.style[sp.Name] {
			total += n
			if got[c] != n {
				t.Errorf("%s style %s: %d samples, test counts %d images", sp.Name, l.classes["style"][c], got[c], n)
			}
		}
		if sp.Count(Style) != total || total == 0 {
			t.Errorf("%s: %d samples with a style label, test counts %d", sp.Name, sp.Count(Style), total)
		}
	}
}

// The repository's sample (testdata/wikiart) opens both ways its README says: as a data root
// (trimmed CSVs) and as the image folder of the real CSVs; both give the same samples, 2 train
// and 2 val images for each of the 11 styles present, all three kinds of label among them.
func TestSample(t *testing.T) {
	sample := testenv.Sample(t)
	images := filepath.Join(sample, "images")
	for _, o := range []Options{{Root: sample}, {Root: testenv.Data(t), Images: images}} {
		var l loaded
		l.train, l.val, l.classes, l.rep, l.err = Load(o)
		if l.err != nil {
			t.Fatal(l.err)
		}
		checkImageCounts(t, l, expectImages(t, o.Root, images))
		for _, sp := range []*Split{l.train, l.val} {
			styles := 0
			for _, n := range sp.ClassCounts(Style, spec.NumStyles) {
				if n != 0 && n != 2 {
					t.Errorf("%s (root %s): a style with %d images, the sample has 2 per style", sp.Name, o.Root, n)
				}
				if n == 2 {
					styles++
				}
			}
			if styles != 11 || sp.Count(Genre) == 0 || sp.Count(Artist) == 0 {
				t.Errorf("%s (root %s): %d styles, %d genre and %d artist labels", sp.Name, o.Root, styles, sp.Count(Genre), sp.Count(Artist))
			}
		}
		if len(l.rep.Conflicts) != 1 {
			t.Errorf("root %s: %d conflicts; the sample keeps genre_val's conflicting pair", o.Root, len(l.rep.Conflicts))
		}
	}
}

// The sample's CSVs are the real files' header lines and rows, byte for byte and in order, and
// its class lists are the real ones.
func TestSampleRowsVerbatim(t *testing.T) {
	sample, data := testenv.Sample(t), testenv.Data(t)
	for task := range Tasks {
		a, err := os.ReadFile(filepath.Join(sample, ClassFileName(task)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(data, ClassFileName(task)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from data/wikiart's", ClassFileName(task))
		}
		for _, split := range SplitNames {
			name := FileName(task, split)
			small, err := os.ReadFile(filepath.Join(sample, name))
			if err != nil {
				t.Fatal(err)
			}
			full, err := os.ReadFile(filepath.Join(data, name))
			if err != nil {
				t.Fatal(err)
			}
			rest := full
			for _, line := range bytes.SplitAfter(small, []byte("\n")) {
				if len(line) == 0 {
					continue
				}
				i := bytes.Index(rest, line)
				if i < 0 || (i > 0 && rest[i-1] != '\n') {
					t.Fatalf("%s: sample line %q is not a line of data/wikiart/%s (in order)", name, line, name)
				}
				rest = rest[i+len(line):]
			}
		}
	}
}

// The sample's images are the full set's files, byte for byte (integration).
func TestSampleImagesFromWikiArt(t *testing.T) {
	root := testenv.WikiArt(t)
	sample := filepath.Join(testenv.Sample(t), "images")
	n := 0
	err := filepath.WalkDir(sample, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(sample, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(root, "images", rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: not the same file in %s/images (%v)", rel, root, err)
		}
		n++
		return nil
	})
	if err != nil || n != 44 {
		t.Errorf("%d sample images compared (%v), want 44", n, err)
	}
}
