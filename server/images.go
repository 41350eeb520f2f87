package server

import (
	"bytes"
	"context"
	"fmt"

	"github.com/artnet/artnet/preprocess"
)

// decodeImages decodes encoded image files (the BYTES input image_bytes, on either protocol)
// into one B×3×S×S tensor with artnet's own preprocessing, the same as /v1/predict's. The
// tensor and, one file at a time, the worst case of decoding it (from its header) are
// reserved in res first; an error names the element.
func (s *Server) decodeImages(ctx context.Context, res *reservation, files [][]byte) (_ []float32, err error) {
	_, sp := s.stage(ctx, "decode")
	defer func() { endStage(sp, err) }()
	n := s.popt.Len()
	if err := res.grow(ctx, int64(len(files))*int64(n)*4); err != nil {
		return nil, err
	}
	out := make([]float32, len(files)*n)
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := preprocess.DecodeConfig(bytes.NewReader(f), s.popt)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", InputBytesName, i, err)
		}
		dm := hdr.DecodeMemory(s.popt)
		if err := res.grow(ctx, dm); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", InputBytesName, i, err)
		}
		img, err := preprocess.DecodeImage(bytes.NewReader(f), s.popt)
		if err != nil {
			res.shrink(dm)
			return nil, fmt.Errorf("%s[%d]: %w", InputBytesName, i, err)
		}
		preprocess.ToTensorInto(out[i*n:(i+1)*n], img, s.popt)
		res.shrink(dm) // the decoded picture is garbage now
	}
	return out, nil
}
