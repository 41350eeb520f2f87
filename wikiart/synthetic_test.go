package wikiart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synthRoot writes a small data set into a temp dir: class lists with 3 styles (class 1 is
// Art_Nouveau), 2 genres, 2 artists, and the six CSVs, replaced by over where given.
func synthRoot(t *testing.T, over map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"style_class.txt":  "0 Baroque\r\n1 Art_Nouveau\r\n2 Cubism\r\n",
		"genre_class.txt":  "0 portrait\n1 landscape\n",
		"artist_class.txt": "0 Rembrandt\n1 Georges_Braque\n\n",
		// CRLF and LF mixed, no final line ending.
		"style_train.csv": "Baroque/rembrandt_a.jpg,0\r\nArt_Nouveau_Modern/klimt_b.jpg,1\nCubism/braque_c.jpg,2",
		"style_val.csv":   "Baroque/rembrandt_v.jpg,0\r\n",
		"genre_train.csv": "Baroque/rembrandt_a.jpg,0\r\nCubism/other_d.jpg,1\r\n",
		"genre_val.csv":   "Baroque/rembrandt_v.jpg,1\r\n",
		// Artist layout: header with a trailing space, blank line, double comma.
		"artist_train.csv": "(Path to image),, (Groundtruth class) \n\nBaroque/rembrandt_a.jpg,,0\nCubism/braque_c.jpg,,1\n",
		"artist_val.csv":   "(Path to image),, (Groundtruth class)\n\n",
	}
	for k, v := range over {
		files[k] = v
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func touch(t *testing.T, root string, rel ...string) {
	t.Helper()
	for _, r := range rel {
		p := filepath.Join(root, filepath.FromSlash(r))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func labelsOf(s *Split) map[string][3]int {
	m := map[string][3]int{}
	for _, x := range s.Samples {
		m[x.Path] = x.Labels
	}
	return m
}

func TestSyntheticFormatsAndMerge(t *testing.T) {
	dir := synthRoot(t, nil)
	train, val, classes, rep, err := Load(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ImagesChecked {
		t.Errorf("no images folder, yet images were checked")
	}
	if len(classes["style"]) != 3 || classes["style"][1] != "Art_Nouveau" || len(classes["artist"]) != 2 {
		t.Errorf("classes %v", classes)
	}
	want := map[string][3]int{
		"Baroque/rembrandt_a.jpg":        {0, 0, 0},
		"Art_Nouveau_Modern/klimt_b.jpg": {1, -1, -1},
		"Cubism/braque_c.jpg":            {2, -1, 1},
		"Cubism/other_d.jpg":             {-1, 1, -1},
	}
	got := labelsOf(train)
	if len(got) != len(want) {
		t.Errorf("train %v, want %v", got, want)
	}
	for p, l := range want {
		if got[p] != l {
			t.Errorf("train %s: labels %v, want %v", p, got[p], l)
		}
	}
	if train.Samples[0].Path != "Baroque/rembrandt_a.jpg" || train.Samples[3].Path != "Cubism/other_d.jpg" {
		t.Errorf("sample order %v: want style file order, then genre-only paths", train.Samples)
	}
	if v := labelsOf(val); len(v) != 1 || v["Baroque/rembrandt_v.jpg"] != [3]int{0, 1, -1} {
		t.Errorf("val %v", v)
	}
	if rep.FolderMismatch != 0 {
		t.Errorf("Art_Nouveau in Art_Nouveau_Modern counted as a folder mismatch: %+v", rep.FolderMismatchExamples)
	}
	if fr := rep.File("artist_train.csv"); fr.Rows != 2 || fr.Labels != 2 {
		t.Errorf("artist_train: %+v, want 2 rows (header and blank line are not rows)", fr)
	}
	if fr := rep.File("artist_val.csv"); fr.Rows != 0 || len(fr.PerClass) != 2 {
		t.Errorf("artist_val: %+v", fr)
	}
}

func TestSyntheticFolderMismatch(t *testing.T) {
	dir := synthRoot(t, map[string]string{"style_val.csv": "Cubism/x.jpg,0\nArt_Nouveau/y.jpg,1\n"})
	_, _, _, rep, err := Load(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FolderMismatch != 2 || !strings.Contains(rep.String(), "Art_Nouveau_Modern") {
		t.Errorf("folder mismatches %d (want 2), report:\n%s", rep.FolderMismatch, rep)
	}
}

func TestSyntheticDuplicates(t *testing.T) {
	dir := synthRoot(t, map[string]string{
		"genre_train.csv": "Baroque/rembrandt_a.jpg,0\r\nBaroque/rembrandt_a.jpg,0\r\nCubism/braque_c.jpg,0\r\nCubism/braque_c.jpg,1\r\nCubism/braque_c.jpg,0\r\n",
	})
	train, _, _, rep, err := Load(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	fr := rep.File("genre_train.csv")
	if fr.Rows != 5 || fr.Duplicates != 1 || fr.ConflictRows != 3 || fr.Labels != 1 {
		t.Errorf("genre_train: %+v, want 5 rows = 1 label + 1 duplicate + 3 conflict rows", fr)
	}
	if len(rep.Conflicts) != 1 || rep.Conflicts[0].Path != "Cubism/braque_c.jpg" ||
		len(rep.Conflicts[0].Lines) != 3 || rep.Conflicts[0].Lines[1] != 4 {
		t.Errorf("conflicts %+v", rep.Conflicts)
	}
	l := labelsOf(train)
	if l["Cubism/braque_c.jpg"] != [3]int{2, -1, 1} || l["Baroque/rembrandt_a.jpg"] != [3]int{0, 0, 0} {
		t.Errorf("labels %v: the conflicting genre label must be dropped, others kept", l)
	}
}

// Malformed lines are errors naming file:line, on one line.
func TestSyntheticMalformed(t *testing.T) {
	cases := []struct {
		file, body, want string
	}{
		{"style_train.csv", "Baroque/a.jpg,0\r\nBaroque/b.jpg,0,1\r\n", "style_train.csv:2: "},
		{"style_train.csv", "Baroque/a.jpg\n", "style_train.csv:1: "},
		{"genre_val.csv", "\nBaroque/a.jpg,one\n", "genre_val.csv:2: label \"one\" is not an integer"},
		{"style_val.csv", "Baroque/a.jpg,0\nBaroque/b.jpg,3\n", "style_val.csv:2: label 3 out of range"},
		{"style_val.csv", "Baroque/a.jpg,-1\n", "style_val.csv:1: label -1 out of range"},
		{"artist_train.csv", "(Path to image),, (Groundtruth class)\n\nx.jpg,,0\ny.jpg,,2\n", "artist_train.csv:4: label 2 out of range"},
		{"artist_val.csv", "x.jpg,,0\n(Path to image),, (Groundtruth class)\n", "artist_val.csv:2: header"},
		{"genre_train.csv", ",0\n", "genre_train.csv:1: empty image path"},
		{"genre_train.csv", "a.jpg,,,0\n", "genre_train.csv:1: "},
		{"genre_train.csv", "../etc/passwd,0\n", "genre_train.csv:1: image path"},
		{"genre_train.csv", "/etc/passwd,0\n", "genre_train.csv:1: image path"},
		{"style_class.txt", "0 Baroque\n2 Cubism\n", "style_class.txt:2: class index 2, want 1"},
		{"genre_class.txt", "0 portrait\nx landscape\n", "genre_class.txt:2: class index"},
		{"genre_class.txt", "0 portrait\n1 portrait\n", "genre_class.txt:2: class name"},
		{"artist_class.txt", "0 Rembrandt\n1 Georges Braque\n", "artist_class.txt:2: want \"index Name\""},
	}
	for _, c := range cases {
		dir := synthRoot(t, map[string]string{c.file: c.body})
		_, _, _, _, err := Load(Options{Root: dir})
		if err == nil {
			t.Errorf("%s %q: no error", c.file, c.body)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, filepath.Join(dir, c.file)) || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s %q: error %q, want one line naming the file and containing %q", c.file, c.body, msg, c.want)
		}
	}
}

func TestSyntheticMissingFiles(t *testing.T) {
	dir := synthRoot(t, nil)
	if err := os.Remove(filepath.Join(dir, "genre_val.csv")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := Load(Options{Root: dir}); err == nil || !strings.Contains(err.Error(), "genre_val.csv") {
		t.Errorf("missing genre_val.csv: error %v", err)
	}
	if _, _, _, _, err := Load(Options{}); err == nil {
		t.Errorf("empty Root accepted")
	}
	if _, _, _, _, err := Load(Options{Root: synthRoot(t, nil), Images: filepath.Join(dir, "nope")}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("nonexistent Images folder: error %v", err)
	}
	if _, _, _, _, err := Load(Options{Root: synthRoot(t, nil), Strict: true}); err == nil {
		t.Errorf("Strict without an image folder accepted")
	}
}

// Image checks: byte-exact mojibake names resolve; a differently encoded name is missing;
// Strict refuses with the first missing path and the count.
func TestSyntheticImages(t *testing.T) {
	const moji = "Cubism/roger-bissi\xc3\xa3\xc2\xa8re_c.jpg" // as the real CSVs write "bissière"
	const fixed = "Cubism/roger-bissi\xc3\xa8re_d.jpg"        // properly encoded, not on disk
	dir := synthRoot(t, map[string]string{
		"style_train.csv": "Baroque/rembrandt_a.jpg,0\r\n" + moji + ",2\r\n" + fixed + ",2\r\nCubism/braque_c.jpg,2\r\n",
	})
	touch(t, filepath.Join(dir, "images"), "Baroque/rembrandt_a.jpg", moji, "Cubism/roger-bissi\xc3\xa8re_c.jpg", "Cubism/unlisted.jpg")
	train, _, _, rep, err := Load(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	l := labelsOf(train)
	if _, ok := l[moji]; !ok {
		t.Errorf("mojibake path not kept: %v", l)
	}
	if _, ok := l[fixed]; ok {
		t.Errorf("path without an image kept")
	}
	fr := rep.File("style_train.csv")
	if fr.MissingImage != 2 || fr.Labels != 2 || rep.Unlisted != 2 || rep.ImagesOnDisk != 4 {
		t.Errorf("style_train %+v, unlisted %d, on disk %d", fr, rep.Unlisted, rep.ImagesOnDisk)
	}
	// genre_train: a.jpg kept, other_d missing; artist_train: a kept, braque_c missing; val: missing.
	if rep.Missing != 2+1+1+1+1 || rep.MissingExamples[0].Path != fixed || rep.MissingExamples[0].Line != 3 {
		t.Errorf("missing %d, examples %+v", rep.Missing, rep.MissingExamples)
	}
	if !strings.Contains(rep.String(), "style_train.csv:3 "+fixed) {
		t.Errorf("report does not show the first missing path:\n%s", rep)
	}
	_, _, _, srep, err := Load(Options{Root: dir, Strict: true})
	if err == nil || !strings.Contains(err.Error(), "style_train.csv:3 "+fixed) || !strings.Contains(err.Error(), "6 labels have no image") {
		t.Errorf("strict: error %v", err)
	}
	if srep == nil {
		t.Errorf("strict: no report with the error")
	}
	// SkipImageCheck keeps everything.
	train, _, _, _, err = Load(Options{Root: dir, SkipImageCheck: true})
	if err != nil || len(train.Samples) != 5 {
		t.Errorf("SkipImageCheck: %v, %d samples, want 5", err, len(train.Samples))
	}
}

// Symbolic links: an image root that is a link, a style folder that is a link, and an image
// file that is a link are all followed; a folder named like an image is not an image.
func TestSyntheticSymlinks(t *testing.T) {
	dir := synthRoot(t, nil)
	elsewhere := t.TempDir()
	touch(t, elsewhere, "imgs/Baroque/other.jpg", "cubism/braque_c.jpg", "real/rembrandt.jpg")
	if err := os.Mkdir(filepath.Join(elsewhere, "imgs/Art_Nouveau_Modern"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(elsewhere, "imgs/Art_Nouveau_Modern/klimt_b.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(elsewhere, "cubism"), filepath.Join(elsewhere, "imgs/Cubism")))
	must(os.Symlink(filepath.Join(elsewhere, "real/rembrandt.jpg"), filepath.Join(elsewhere, "imgs/Baroque/rembrandt_a.jpg")))
	must(os.Symlink(filepath.Join(elsewhere, "imgs"), filepath.Join(dir, "images")))
	train, _, _, rep, err := Load(Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	l := labelsOf(train)
	if _, ok := l["Cubism/braque_c.jpg"]; !ok {
		t.Errorf("image in a linked folder not found: %v", l)
	}
	if _, ok := l["Baroque/rembrandt_a.jpg"]; !ok {
		t.Errorf("linked image under a linked root not found: %v", l)
	}
	if _, ok := l["Art_Nouveau_Modern/klimt_b.jpg"]; ok {
		t.Errorf("a folder was taken for an image")
	}
	if fr := rep.File("style_train.csv"); fr.MissingImage != 1 || fr.Labels != 2 {
		t.Errorf("style_train %+v", fr)
	}
}

func TestLines(t *testing.T) {
	got := lines([]byte("\xef\xbb\xbfa,1\r\nb,2\n\r\nc\rd,3\r\n"))
	want := []string{"a,1", "b,2", "", "c\rd,3"}
	if len(got) != len(want) {
		t.Fatalf("lines: %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("line %d: %q, want %q", i+1, got[i], want[i])
		}
	}
}
