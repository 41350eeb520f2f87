//go:build !cgo

package preprocess

import "errors"

// Without cgo there is no libjpeg-turbo: JPEGs are decoded by image/jpeg.

type tjHeader struct {
	w, h, subsamp, colorspace int
}

func (h tjHeader) cmyk() bool { return false }

func loadTurbo() (path, why string) { return "", "built without cgo (CGO_ENABLED=0)" }

var errNoCgo = errors.New("built without cgo")

func turboHeader([]byte) (tjHeader, error) { return tjHeader{}, errNoCgo }

func turboDecodeRGBA(_, _ []byte, _, _ int) (string, error) { return "", errNoCgo }

func cMallocInUse() int64 { return -1 }
