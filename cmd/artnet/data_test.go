package main

import (
	"archive/zip"
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/datadl"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/wikiart"
)

// A loopback mirror of the repository's split files (data/wikiart, in the ArtGAN repository's
// layout, so the built-in sha256 apply) and a small archive of three real images from the
// repository's sample: `data download --base-url` gives a folder that wikiart.Load reads, and a
// rerun downloads nothing.
func TestDataDownloadFromLocalMirror(t *testing.T) {
	data, images := testenv.Data(t), filepath.Join(testenv.Sample(t), "images")
	mux := http.NewServeMux()
	for _, s := range datadl.SplitFiles {
		local := filepath.Join(data, s.Name)
		mux.HandleFunc("/m/"+s.Remote, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, local) })
	}
	_, val, _, _, err := wikiart.Load(wikiart.Options{Root: data, Images: images})
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, s := range val.Samples[:3] {
		b, err := os.ReadFile(s.File(images))
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create("wikiart/" + s.Path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var archiveGets atomic.Int32
	mux.HandleFunc("/m/wikiart.zip", func(w http.ResponseWriter, r *http.Request) {
		archiveGets.Add(1)
		http.ServeContent(w, r, "wikiart.zip", time.Time{}, bytes.NewReader(zb.Bytes()))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	dest := filepath.Join(t.TempDir(), "wikiart")
	cmds := []*cli.Command{dataCommand()}
	out, err := runCmds(t, cmds, "data", "download", "--dest", dest, "--base-url", ts.URL+"/m", "--retries", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "10 files downloaded, 0 already there") || !strings.Contains(out, "3 images unpacked") {
		t.Errorf("output:\n%s", out)
	}
	_, got, classes, rep, err := wikiart.Load(wikiart.Options{Root: dest})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Samples) != 3 || len(classes["style"]) != 27 || !rep.ImagesChecked {
		t.Errorf("downloaded folder: %d val samples with images, %d styles", len(got.Samples), len(classes["style"]))
	}
	out, err = runCmds(t, cmds, "data", "download", "--dest", dest, "--base-url", ts.URL+"/m")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "0 files downloaded, 10 already there") || !strings.Contains(out, "0 images unpacked, 3 already there") || archiveGets.Load() != 1 {
		t.Errorf("rerun (archive fetched %d times):\n%s", archiveGets.Load(), out)
	}
}

func TestDataDownloadErrors(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	badMan := filepath.Join(t.TempDir(), "m.json")
	writeFile(t, badMan, "{not json")
	cmds := []*cli.Command{dataCommand()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"data", "download"}, "--dest"},
		{[]string{"data", "download", "--dest", t.TempDir(), "--manifest", badMan}, "m.json"},
		{[]string{"data", "download", "--dest", t.TempDir(), "--base-url", ts.URL, "--retries", "0"}, "404"},
	} {
		_, err := runCmds(t, cmds, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one-line error mentioning %q, got %v", tc.args, tc.want, err)
		}
	}
}
