package wikiart

import "testing"

// BenchmarkLoadLabels measures reading and merging the six real split files (no image check).
func BenchmarkLoadLabels(b *testing.B) {
	for b.Loop() {
		if _, _, _, _, err := Load(Options{Root: sharedRoot, SkipImageCheck: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadImages measures the same with the image folder listed and checked.
func BenchmarkLoadImages(b *testing.B) {
	for b.Loop() {
		if _, _, _, _, err := Load(Options{Root: sharedRoot}); err != nil {
			b.Fatal(err)
		}
	}
}
