package onnxrt_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// Open a model (here a tiny test model held in memory; Open reads a file), run a batch of two
// images and read each image's most probable style.
func ExampleOpenBytes() {
	onnx := runtimetest.TinyModel(spec.Tiny())
	m, err := onnxrt.OpenBytes("tiny.onnx", onnx, onnxrt.Options{Providers: []string{"cpu"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	cfg := m.Config()
	images := runtimetest.Images(2, cfg.ImageSize, 1) // 2×3×64×64, normalized CHW
	res, err := m.Run(context.Background(), images, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("providers", m.Providers())
	for i := 0; i < res.Batch; i++ {
		p := res.Row("style", i)
		best := slices.Index(p, slices.Max(p))
		fmt.Printf("image %d: %s, %d attention weights\n", i, cfg.Classes["style"][best], len(res.Row("attention", i)))
	}
	// Output:
	// providers [cpu]
	// image 0: style_20, 16 attention weights
	// image 1: style_5, 16 attention weights
}
