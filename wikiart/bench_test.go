package wikiart

import (
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// BenchmarkLoadLabels measures reading and merging the six real split files (no image check).
func BenchmarkLoadLabels(b *testing.B) {
	root := testenv.Data(b)
	for b.Loop() {
		if _, _, _, _, err := Load(Options{Root: root, SkipImageCheck: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadImages measures the same with the full image folder listed and checked.
func BenchmarkLoadImages(b *testing.B) {
	root := testenv.WikiArt(b)
	for b.Loop() {
		if _, _, _, _, err := Load(Options{Root: root}); err != nil {
			b.Fatal(err)
		}
	}
}
