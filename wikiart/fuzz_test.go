package wikiart

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// FuzzParseLine checks the CSV line parser on arbitrary bytes, seeded with real lines of the
// six files: it never panics, and whatever it accepts comes back unchanged when written again
// in either layout.
func FuzzParseLine(f *testing.F) {
	for task := range Tasks {
		for _, split := range SplitNames {
			b, err := os.ReadFile(filepath.Join(testenv.Data(f), FileName(task, split)))
			if err != nil {
				f.Fatal(err)
			}
			ls := lines(b)
			for i := 0; i < len(ls) && i < 4; i++ {
				f.Add(ls[i])
			}
		}
	}
	f.Add([]byte("Cubism/roger-bissi\xc3\xa3\xc2\xa8re_x.jpg,7"))
	f.Add([]byte("(Path to image),, (Groundtruth class) "))
	f.Add([]byte("a,,,1"))
	f.Add([]byte("a/../../b,1"))
	f.Add([]byte(",, "))
	f.Fuzz(func(t *testing.T, line []byte) {
		path, label, err := parseLine(line)
		if err != nil {
			if bytes.ContainsRune([]byte(err.Error()), '\n') {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if path == "" || bytes.IndexByte([]byte(path), ',') >= 0 || !bytes.HasPrefix(line, []byte(path+",")) {
			t.Fatalf("%q: path %q is not the bytes before the first comma", line, path)
		}
		for _, sep := range []string{",", ",,"} {
			p2, l2, err := parseLine([]byte(path + sep + strconv.Itoa(label)))
			if err != nil || p2 != path || l2 != label {
				t.Fatalf("%q → (%q, %d) does not round-trip with %q: (%q, %d, %v)", line, path, label, sep, p2, l2, err)
			}
		}
	})
}
