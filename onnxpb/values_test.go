package onnxpb

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestFloats(t *testing.T) {
	name := "w"
	want := []float32{1.5, -2, float32(math.Inf(1))}
	raw := make([]byte, 12)
	for i, v := range want {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	for _, tc := range []*TensorProto{
		{Name: &name, Dims: []int64{3}, FloatData: want},
		{Name: &name, Dims: []int64{1, 3}, RawData: raw},
	} {
		got, err := Floats(tc)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Floats = %v, %v; want %v", got, err, want)
		}
	}
	if _, err := Floats(&TensorProto{Name: &name, Dims: []int64{4}, RawData: raw}); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("12 raw bytes for 4 floats: error %v, want one naming the tensor", err)
	}
}
