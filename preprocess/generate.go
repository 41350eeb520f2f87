package preprocess

// The fixtures in ../testdata/images are made by internal/fixtures (checked by
// TestFixturesUpToDate); the Pillow references (pil-*.rgb, pil-windows.json, pil-422.jpg, pil-progressive.jpg,
// pil-lossy*.webp) by internal/fixtures/pilref.py, which needs Debian's python3-pil and
// python3-numpy and is run by hand after the first step:
//
//	go generate && /usr/bin/python3 internal/fixtures/pilref.py

//go:generate go run ./internal/fixtures/gen -out ../testdata/images
