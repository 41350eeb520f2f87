package datadl

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// server is a loopback file server with switchable misbehaviour.
type server struct {
	t     *testing.T
	files map[string][]byte

	mu          sync.Mutex
	requests    []string // "PATH RANGE"
	ignoreRange bool
	cutAt       int64 // first non-Range GET of a file stops after cutAt bytes (0: never)
	cut         map[string]bool
	shortBy     int64         // announce Content-Length, send this many bytes fewer
	stallAfter  int64         // send this many bytes, then hang until the client leaves
	release     chan struct{} // closed at cleanup: hanging handlers return
}

func newServer(t *testing.T, files map[string][]byte) (*server, string) {
	s := &server{t: t, files: files, cut: map[string]bool{}, release: make(chan struct{})}
	ts := httptest.NewServer(s)
	t.Cleanup(func() { close(s.release); ts.Close() })
	return s, ts.URL
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.Path+" "+r.Header.Get("Range"))
	ignore, cutAt, short, stall := s.ignoreRange, s.cutAt, s.shortBy, s.stallAfter
	first := !s.cut[r.URL.Path] && r.Header.Get("Range") == ""
	if first && cutAt > 0 {
		s.cut[r.URL.Path] = true
	}
	s.mu.Unlock()
	data, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if ignore {
		r.Header.Del("Range")
	}
	switch {
	case first && cutAt > 0 && int64(len(data)) > cutAt:
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data[:cutAt])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops mid-body
	case short > 0:
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data[:int64(len(data))-short])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case stall > 0:
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data[:stall])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Time{}, bytes.NewReader(data))
}

func (s *server) reqs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func fetcher() *Fetcher { return &Fetcher{Log: quiet(), RetryWait: time.Millisecond} }

func mustEqualFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the served %d", path, len(got), len(want))
	}
	if _, err := os.Stat(path + ".part"); err == nil {
		t.Errorf("%s.part left behind", path)
	}
}

func TestFetchFullWithProgress(t *testing.T) {
	data := randomBytes(300_000, 1)
	_, url := newServer(t, map[string][]byte{"/f.bin": data})
	dest := filepath.Join(t.TempDir(), "sub", "f.bin")
	f := fetcher()
	var prog LogProgress
	prog.Log = quiet()
	f.Progress = &prog
	r, err := f.Fetch(context.Background(), url+"/f.bin", dest, Expect{Size: int64(len(data)), SHA256: sum(data)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Resumed || r.Skipped || r.Bytes != int64(len(data)) {
		t.Errorf("result %+v", r)
	}
	if prog.got != int64(len(data)) || prog.total != int64(len(data)) {
		t.Errorf("progress saw %d of %d bytes, want %d", prog.got, prog.total, len(data))
	}
	mustEqualFile(t, dest, data)
}

// An interrupted transfer leaves a .part file; the next Fetch continues it with Range.
func TestFetchResumesWithRange(t *testing.T) {
	data := randomBytes(200_000, 2)
	s, url := newServer(t, map[string][]byte{"/a.zip": data})
	s.cutAt = 70_000
	dest := filepath.Join(t.TempDir(), "a.zip")
	want := Expect{Size: int64(len(data)), SHA256: sum(data)}
	if _, err := fetcher().Fetch(context.Background(), url+"/a.zip", dest, want); err == nil {
		t.Fatal("cut transfer: no error")
	}
	st, err := os.Stat(dest + ".part")
	if err != nil || st.Size() != 70_000 {
		t.Fatalf("partial file after the cut: %v, size %v, want 70000", err, st)
	}
	r, err := fetcher().Fetch(context.Background(), url+"/a.zip", dest, want)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Resumed || r.Restarted {
		t.Errorf("result %+v, want resumed", r)
	}
	if reqs := s.reqs(); len(reqs) != 2 || reqs[1] != "/a.zip bytes=70000-" {
		t.Errorf("requests %q, want the second with Range bytes=70000-", reqs)
	}
	mustEqualFile(t, dest, data)

	// With retries, one call gets through the cut (and without an expected size: Content-Length).
	s2, url2 := newServer(t, map[string][]byte{"/b.zip": data})
	s2.cutAt = 123_456
	f := fetcher()
	f.Retries = 2
	dest2 := filepath.Join(t.TempDir(), "b.zip")
	if r, err := f.Fetch(context.Background(), url2+"/b.zip", dest2, Expect{}); err != nil || !r.Resumed {
		t.Fatalf("fetch with retries: %+v %v", r, err)
	}
	mustEqualFile(t, dest2, data)
}

// A server that ignores Range answers 200 with the whole file: the .part is started over.
func TestFetchServerIgnoresRange(t *testing.T) {
	data := randomBytes(50_000, 3)
	s, url := newServer(t, map[string][]byte{"/x.csv": data})
	s.ignoreRange = true
	dest := filepath.Join(t.TempDir(), "x.csv")
	if err := os.WriteFile(dest+".part", bytes.Repeat([]byte("junk"), 2000), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := fetcher().Fetch(context.Background(), url+"/x.csv", dest, Expect{SHA256: sum(data)})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Restarted || r.Resumed {
		t.Errorf("result %+v, want restarted", r)
	}
	if reqs := s.reqs(); len(reqs) != 1 || reqs[0] != "/x.csv bytes=8000-" {
		t.Errorf("requests %q", reqs)
	}
	mustEqualFile(t, dest, data)
}

func TestFetchErrors(t *testing.T) {
	data := randomBytes(40_000, 4)
	for _, tc := range []struct {
		name    string
		setup   func(*server)
		want    Expect
		retries int
		err     string
		reqs    int
	}{
		{"size differs from expected", nil, Expect{Size: 40_001}, 3, "40000 bytes, want 40001", 1},
		{"checksum mismatch", nil, Expect{SHA256: strings.Repeat("ab", 32)}, 0, "checksum mismatch", 1},
		{"body shorter than Content-Length", func(s *server) { s.shortBy = 1000 }, Expect{}, 1, "broke off at byte 39000", 2},
		{"not found", nil, Expect{}, 3, "404", 1},
		{"stalled", func(s *server) { s.stallAfter = 10 }, Expect{}, 0, "nothing received", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, url := newServer(t, map[string][]byte{"/d.bin": data})
			if tc.setup != nil {
				tc.setup(s)
			}
			path := "/d.bin"
			if tc.name == "not found" {
				path = "/missing.bin"
			}
			f := fetcher()
			f.Retries = tc.retries
			f.Stall = 200 * time.Millisecond
			dest := filepath.Join(t.TempDir(), "d.bin")
			_, err := f.Fetch(context.Background(), url+path, dest, tc.want)
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("want one-line error with %q, got %v", tc.err, err)
			}
			if _, err := os.Stat(dest); err == nil {
				t.Error("a failed download left the destination file")
			}
			if n := len(s.reqs()); n != tc.reqs {
				t.Errorf("%d requests, want %d", n, tc.reqs)
			}
			if tc.name == "checksum mismatch" {
				if _, err := os.Stat(dest + ".part"); err == nil {
					t.Error("the .part of a mismatching file was kept")
				}
			}
		})
	}
}

type entry struct {
	name string
	body string
	mode os.FileMode
}

func makeZip(t *testing.T, entries []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestUnzipRefusesEscapingPaths(t *testing.T) {
	for _, bad := range []string{"../evil.jpg", "wikiart/../../evil.jpg", "/etc/evil", `wikiart\..\evil.jpg`, "C:/evil.jpg"} {
		dir := t.TempDir()
		zp := filepath.Join(dir, "a.zip")
		if err := os.WriteFile(zp, makeZip(t, []entry{{"wikiart/Cubism/ok.jpg", "fine", 0}, {bad, "bad", 0}}), 0o644); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(dir, "out", "images")
		_, err := Unzip(context.Background(), zp, dest, quiet())
		if err == nil || !strings.Contains(err.Error(), "entry") || !strings.Contains(err.Error(), "a.zip") {
			t.Errorf("%q: want an error naming the archive and entry, got %v", bad, err)
		}
		if _, err := os.Stat(filepath.Join(dest, "Cubism", "ok.jpg")); err == nil {
			t.Errorf("%q: files were written before the bad entry was refused", bad)
		}
		if _, err := os.Stat(filepath.Join(dir, "evil.jpg")); err == nil {
			t.Errorf("%q: escaped", bad)
		}
	}
}

func TestUnzipLayoutSkipAndLinks(t *testing.T) {
	dir := t.TempDir()
	zp := filepath.Join(dir, "w.zip")
	z := makeZip(t, []entry{
		{"wikiart/", "", os.ModeDir | 0o755},
		{"wikiart/Cubism/pablo_a.jpg", "aaaa", 0},
		{"wikiart/Art_Nouveau_Modern/b\xc3\xa9.jpg", "bb", 0},
		{"wikiart/Cubism/link.jpg", "/etc/passwd", os.ModeSymlink | 0o777},
	})
	if err := os.WriteFile(zp, z, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "images")
	r, err := Unzip(context.Background(), zp, dest, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if r.Extracted != 2 || r.Ignored != 1 || r.Stripped != "wikiart/" {
		t.Errorf("result %+v", r)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "Art_Nouveau_Modern", "b\xc3\xa9.jpg")); err != nil || string(b) != "bb" {
		t.Errorf("images/<Style>/<file>: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "Cubism", "link.jpg")); err == nil {
		t.Error("a symbolic link entry was created")
	}
	r, err = Unzip(context.Background(), zp, dest, quiet())
	if err != nil || r.Extracted != 0 || r.Skipped != 2 {
		t.Errorf("rerun: %+v %v, want everything skipped", r, err)
	}
}

// The whole download from a local mirror (--base-url), then a rerun that fetches nothing.
func TestDownloadFromMirrorAndRerun(t *testing.T) {
	files := map[string][]byte{}
	man := Manifest{}
	for i, s := range SplitFiles {
		b := []byte(fmt.Sprintf("%s content %d\r\n", s.Name, i))
		files["/mirror/"+s.Remote] = b
		man[s.Name] = Expect{Size: int64(len(b)), SHA256: sum(b)}
	}
	z := makeZip(t, []entry{{"wikiart/Cubism/a.jpg", "A", 0}, {"wikiart/Baroque/b.jpg", "BB", 0}})
	files["/mirror/wikiart.zip"] = z
	man[ArchiveName] = Expect{Size: int64(len(z)), SHA256: sum(z)}
	s, url := newServer(t, files)
	dest := t.TempDir()
	o := Options{Dest: dest, BaseURL: url + "/mirror/", Manifest: man, Fetcher: *fetcher()}
	rep, err := Download(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) != 10 || rep.Unzip == nil || rep.Unzip.Extracted != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, sf := range SplitFiles {
		mustEqualFile(t, filepath.Join(dest, sf.Name), files["/mirror/"+sf.Remote])
	}
	if b, err := os.ReadFile(filepath.Join(dest, "images", "Baroque", "b.jpg")); err != nil || string(b) != "BB" {
		t.Errorf("images/Baroque/b.jpg: %q %v", b, err)
	}
	n := len(s.reqs())
	o.RemoveArchive = true
	rep, err = Download(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.reqs()); got != n {
		t.Errorf("rerun made %d requests, want none", got-n)
	}
	for _, f := range rep.Files {
		if !f.Skipped {
			t.Errorf("rerun: %s not skipped", f.Path)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, ArchiveName)); err == nil {
		t.Error("RemoveArchive kept the archive")
	}
	// Archive gone, images unpacked: the marker keeps a third run from fetching it again.
	if _, err := Download(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got := len(s.reqs()); got != n {
		t.Errorf("third run made %d requests, want none", got-n)
	}
	// A file on disk that does not match the manifest is reported, not overwritten.
	if err := os.WriteFile(filepath.Join(dest, "style_val.csv"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Download(context.Background(), o); err == nil || !strings.Contains(err.Error(), "style_val.csv") || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("edited file: %v", err)
	}
}

func TestManifestAndContentRange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.json")
	if err := os.WriteFile(p, []byte(`{"wikiart.zip": {"size": 10, "sha256": "xyz"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(p); err == nil || !strings.Contains(err.Error(), "wikiart.zip") {
		t.Errorf("bad sha256: %v", err)
	}
	for s, want := range map[string][3]int64{"bytes 5-9/10": {5, 9, 10}, "bytes 0-4/*": {0, 4, -1}, "bytes */77": {-1, -1, 77}} {
		a, b, c, err := parseContentRange(s)
		if err != nil || [3]int64{a, b, c} != want {
			t.Errorf("%q: %d %d %d %v, want %v", s, a, b, c, err, want)
		}
	}
	if _, _, _, err := parseContentRange("items 1-2/3"); err == nil {
		t.Error("bad unit accepted")
	}
}

// The bar takes an unknown size and a resumed start without trouble and shows bytes.
func TestBarProgress(t *testing.T) {
	var b bytes.Buffer
	p := &BarProgress{W: &b}
	p.Start("wikiart.zip", 1000, -1)
	p.Add(5000)
	p.Finish()
	p.Start("style_val.csv", 0, 2_000_000)
	p.Add(2_000_000)
	p.Finish()
	p.Add(1) // after Finish: ignored
	if !strings.Contains(b.String(), "style_val.csv") || !strings.Contains(b.String(), "MB") {
		t.Errorf("bar output %q", b.String())
	}
}

// A .part that already holds the whole file (a crash before the rename) is finished from the
// server's 416 answer, without downloading again.
func TestFetchCompletePartFrom416(t *testing.T) {
	data := randomBytes(30_000, 5)
	s, url := newServer(t, map[string][]byte{"/c.bin": data})
	dest := filepath.Join(t.TempDir(), "c.bin")
	if err := os.WriteFile(dest+".part", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fetcher().Fetch(context.Background(), url+"/c.bin", dest, Expect{}); err != nil {
		t.Fatal(err)
	}
	if reqs := s.reqs(); len(reqs) != 1 || reqs[0] != "/c.bin bytes=30000-" {
		t.Errorf("requests %q", reqs)
	}
	mustEqualFile(t, dest, data)
}
