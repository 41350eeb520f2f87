package onnxpb

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Floats returns the values of a float32 tensor, from float_data or else raw_data
// (little-endian), checked against the tensor's dims. (Hand-written, beside the generated types:
// the exporter's fp16 pass and the quantizer both read initializers this way.)
func Floats(t *TensorProto) ([]float32, error) {
	if len(t.GetFloatData()) > 0 {
		return t.GetFloatData(), nil
	}
	raw := t.GetRawData()
	n := int64(1)
	for _, d := range t.GetDims() {
		n *= d
	}
	if int64(len(raw)) != 4*n {
		return nil, fmt.Errorf("tensor %q: %d bytes of raw data for %d floats", t.GetName(), len(raw), n)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v, nil
}
