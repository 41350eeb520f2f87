// Package testenv is the one place tests find their data (and the few helpers several test
// packages share: Missing for a tool a machine lacks, LockedBuffer for output written
// concurrently).
//
// Core tests use what the repository holds: testdata/ (fixtures, three public-domain paintings
// under testdata/paintings, a labelled WikiArt sample under testdata/wikiart) and data/wikiart
// (the ArtGAN split CSVs and class lists). Testdata returns those paths from any package.
//
// Integration tests need the 13,563-image WikiArt set, which stays outside the repository. They
// call WikiArt, which returns $ARTNET_WIKIART, else ../shared/wikiart beside the repository root
// when it exists, and otherwise skips the test with one line saying how to run it. .ci/run sets
// ARTNET_WIKIART when ../shared/wikiart exists, so CI runs them all. Tests of several data roots
// also call WikiArtExtra (the style-only extra root, ../shared/wikiart-extra; it is found beside
// the $ARTNET_WIKIART folder too).
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/artnet/artnet/internal/envvar"
)

// EnvWikiArt names the WikiArt folder (split CSVs, class lists, images/) for integration tests.
var EnvWikiArt = envvar.WikiArt.Name

// Paintings in testdata/paintings (public-domain works, downsized), relative to testdata/.
const (
	StarryNight = "paintings/van-gogh_the-starry-night.jpg" // 752×600 JPEG
	TheScream   = "paintings/edvard-munch_the-scream.jpg"   // 352×448 JPEG
	NightCafe   = "paintings/van-gogh_the-night-cafe.jpg"   // JPEG
)

// EnvWikiArtExtra names the extra WikiArt root (style labels only: style CSVs, style_class.txt,
// images/) for integration tests of several data roots.
var EnvWikiArtExtra = envvar.WikiArtExtra.Name

// SkipLineExtra is what WikiArtExtra says when it skips.
var SkipLineExtra = "integration test: set " + EnvWikiArtExtra + "=/path/to/wikiart-extra (the 10,700-image style-only root; style CSVs, images/) to run"

// SkipLine is what WikiArt says when it skips.
var SkipLine = "integration test: set " + EnvWikiArt + "=/path/to/wikiart (the 13,563-image set; CSVs, class lists, images/) to run"

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// RepoRoot returns the absolute path of the repository root (the folder holding go.mod),
// found upwards from the test's working directory (its package folder).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				return
			}
			up := filepath.Dir(dir)
			if up == dir {
				rootErr = os.ErrNotExist
				return
			}
			dir = up
		}
	})
	if rootErr != nil {
		tb.Fatalf("testenv: no go.mod above the working directory: %v", rootErr)
	}
	return root
}

// Testdata returns the absolute path of testdata/<elem...> in the repository, failing the
// test when it does not exist (testdata is part of the repository).
func Testdata(tb testing.TB, elem ...string) string {
	tb.Helper()
	p := filepath.Join(append([]string{RepoRoot(tb), "testdata"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("testenv: %v (part of the repository)", err)
	}
	return p
}

// BenchImage returns the bytes of the benchmarks' upload image: the file $ARTNET_BENCH_IMAGE
// names, else testdata's Starry Night (752×600 JPEG).
func BenchImage(tb testing.TB) []byte {
	tb.Helper()
	p := envvar.BenchImage.Get()
	if p == "" {
		p = Testdata(tb, StarryNight)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// Data returns the absolute path of the repository's data/wikiart folder (the ArtGAN split
// CSVs and class lists; images only where `artnet data download` put them).
func Data(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(RepoRoot(tb), "data", "wikiart")
	if _, err := os.Stat(filepath.Join(p, "style_train.csv")); err != nil {
		tb.Fatalf("testenv: %v (part of the repository)", err)
	}
	return p
}

// Sample returns the labelled WikiArt sample, testdata/wikiart: trimmed split CSVs (the sample's
// rows, byte-for-byte from the real files), the class lists and images/<path from the CSV>.
// It opens as a data root by itself (wikiart.Options{Root: Sample(t)}), or as the image folder
// of the real CSVs (wikiart.Options{Root: Data(t), Images: Sample(t) + "/images"}).
func Sample(tb testing.TB) string {
	tb.Helper()
	return Testdata(tb, "wikiart")
}

// WikiArt returns the folder of the full WikiArt image set for an integration test:
// $ARTNET_WIKIART (which must hold style_train.csv and images/), else ../shared/wikiart beside
// the repository root when it exists; otherwise it skips the test with SkipLine.
func WikiArt(tb testing.TB) string {
	tb.Helper()
	p, err := locate(envvar.WikiArt.Get(), RepoRoot(tb))
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	if p == "" {
		tb.Skip(SkipLine)
	}
	return p
}

// WikiArtExtra returns the folder of the extra WikiArt root (../shared/wikiart-extra: five more
// styles and more Baroque, style labels only) for an integration test: $ARTNET_WIKIART_EXTRA
// (which must hold style_train.csv and images/), else wikiart-extra beside the folder
// $ARTNET_WIKIART names, else ../shared/wikiart-extra beside the repository root, when it has
// images/; otherwise it skips the test with SkipLineExtra.
func WikiArtExtra(tb testing.TB) string {
	tb.Helper()
	p, err := locateExtra(envvar.WikiArtExtra.Get(), envvar.WikiArt.Get(), RepoRoot(tb))
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	if p == "" {
		tb.Skip(SkipLineExtra)
	}
	return p
}

// locateExtra is WikiArtExtra's choice: env (when set, it must hold the data), else
// wikiart-extra beside wikiArt (the $ARTNET_WIKIART folder) or beside the repository root's
// ../shared, when it has images/; else "" (skip).
func locateExtra(env, wikiArt, root string) (string, error) {
	if env != "" {
		for _, need := range []string{"style_train.csv", "images"} {
			if _, err := os.Stat(filepath.Join(env, need)); err != nil {
				return "", fmt.Errorf("%s=%s: %w", EnvWikiArtExtra, env, err)
			}
		}
		return filepath.Abs(env)
	}
	var near []string
	if wikiArt != "" {
		near = append(near, filepath.Join(filepath.Dir(filepath.Clean(wikiArt)), "wikiart-extra"))
	}
	near = append(near, filepath.Join(filepath.Dir(root), "shared", "wikiart-extra"))
	for _, p := range near {
		if _, err := os.Stat(filepath.Join(p, "images")); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", nil
}

// locate is WikiArt's choice: env (when set, it must hold the data), else root/../shared/wikiart
// when it has images/, else "" (skip).
func locate(env, root string) (string, error) {
	if env != "" {
		for _, need := range []string{"style_train.csv", "images"} {
			if _, err := os.Stat(filepath.Join(env, need)); err != nil {
				return "", fmt.Errorf("%s=%s: %w", EnvWikiArt, env, err)
			}
		}
		return filepath.Abs(env)
	}
	p := filepath.Join(filepath.Dir(root), "shared", "wikiart")
	if _, err := os.Stat(filepath.Join(p, "images")); err == nil {
		return p, nil
	}
	return "", nil
}

// EnvRequireDeps, when "1", makes every optional dependency required: a test whose tool or
// native library is missing fails instead of skipping (the fresh-machine check and CI set it,
// so that a set-up step that stopped installing something is caught); scripts/setup-deps.sh
// and the Makefile read the same variable.
var EnvRequireDeps = envvar.RequireDeps.Name

// Missing reports a test tool or native library this machine lacks: what names it, how says how
// to get it (one line each). The test is skipped with one line, or fails with it when
// $ARTNET_REQUIRE_DEPS=1. `make test` installs them all (scripts/setup-deps.sh) where it can.
func Missing(tb testing.TB, what, how string) {
	tb.Helper()
	line := MissingLine(what, how)
	if envvar.RequireDeps.Get() == "1" {
		tb.Fatal(line + " (" + EnvRequireDeps + "=1: required)")
	}
	tb.Skip(line)
}

// MissingLine is the one line Missing reports.
func MissingLine(what, how string) string {
	return "needs " + what + ": " + how + " (make test installs it: scripts/setup-deps.sh test)"
}
