package onnxrt_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// BenchmarkRun measures a Run of the runtimetest model (a few hundred FLOPs per pixel), so it
// shows the per-call overhead of the wrapper and ORT rather than model compute.
func BenchmarkRun(b *testing.B) {
	m, err := onnxrt.OpenBytes("tiny.onnx", runtimetest.TinyModel(spec.Tiny()), cpuOpts())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			b.Error(err)
		}
	}()
	for _, batch := range []int{1, 8, 32} {
		imgs := runtimetest.Images(batch, 64, 1)
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Run(context.Background(), imgs, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(batch)/1e3, "µs/image")
		})
	}
}

// BenchmarkOpen measures Inspect + Validate + session creation of the runtimetest model.
func BenchmarkOpen(b *testing.B) {
	onnx := runtimetest.TinyModel(spec.Tiny())
	b.ReportAllocs()
	for b.Loop() {
		m, err := onnxrt.OpenBytes("tiny.onnx", onnx, cpuOpts())
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
