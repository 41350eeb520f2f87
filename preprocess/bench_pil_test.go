package preprocess

import (
	"bytes"
	"encoding/binary"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/internal/cpustat"
	"github.com/artnet/artnet/internal/testenv"
)

// BenchmarkPreprocessJPEG is the Go side of bench/decode-vs-pil.sh: a JPEG's whole
// preprocessing (decode → Pillow-exact resize → centre crop → normalize, 224 from 256) with
// libjpeg-turbo at full size (what training and serving use), libjpeg-turbo with draft (DCT
// scaling; measured, not used) and image/jpeg (the fallback). The image is $ARTNET_BENCH_IMAGE,
// else testdata's Starry Night. Besides wall time it reports process CPU time per image
// (cpu-ms/op), which a loaded machine distorts less. With ARTNET_PIL_REF set to the folder
// where bench/pil_preprocess.py wrote Pillow's tensors of the same image (full.f32,
// draft.f32), it also reports the largest and mean absolute difference of the final tensor
// from Pillow's, in 8-bit levels (|Δ|·std·255).
func BenchmarkPreprocessJPEG(b *testing.B) {
	data := testenv.BenchImage(b)
	o := Default()
	ref := os.Getenv("ARTNET_PIL_REF")
	for _, c := range []struct {
		name string
		jp   jpegPath
	}{
		{"turbo", jpegPath{turbo: true}},
		{"turbo-draft", jpegPath{turbo: true, draft: true}},
		{"go", jpegPath{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.jp.turbo {
				needTurbo(b)
			}
			dst := make([]float32, o.Len())
			run := func() {
				m, err := decodeWith(bytes.NewReader(data), o, c.jp)
				if err != nil {
					b.Fatal(err)
				}
				ToTensorInto(dst, m, o)
			}
			run()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpustat.Process()
			for b.Loop() {
				run()
			}
			b.ReportMetric(cpustat.MillisPer(cpu0, b.N), "cpu-ms/op")
			if ref == "" {
				return
			}
			for _, r := range []string{"full", "draft"} {
				maxD, meanD := pilDiff(b, filepath.Join(ref, r+".f32"), dst, o)
				b.ReportMetric(maxD, "max-vs-pil-"+r)
				b.ReportMetric(meanD, "mean-vs-pil-"+r)
			}
		})
	}
}

// pilDiff compares x with the float32 tensor in file, in 8-bit levels.
func pilDiff(b *testing.B, file string, x []float32, o Options) (maxD, meanD float64) {
	raw, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	if len(raw) != 4*len(x) {
		b.Fatalf("%s: %d bytes, want %d", file, len(raw), 4*len(x))
	}
	plane := len(x) / 3
	sum := 0.0
	for i, v := range x {
		p := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		d := math.Abs(float64(v-p)) * float64(o.Std[i/plane]) * 255
		maxD = max(maxD, d)
		sum += d
	}
	return math.Round(maxD*100) / 100, sum / float64(len(x))
}

// BenchmarkJPEGDecodeFloor decodes the same JPEG with libjpeg-turbo at 1/8 scale only: the
// file's Huffman (entropy) decoding with next to no IDCT, colour conversion or resizing. No
// decoder that reads every coefficient — DCT-scaled, cropped or not — gets below it, so it
// bounds what serving can reach on a CPU that also runs the model (bench/serve-vs-ort.sh
// prints ORT's CPU per image / (ORT's + this floor)).
func BenchmarkJPEGDecodeFloor(b *testing.B) {
	needTurbo(b)
	data := testenv.BenchImage(b)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	run := func() {
		m, err := decodeJPEGTurbo(data, bytes.NewReader(nil), cfg, 8)
		if err != nil {
			b.Fatal(err)
		}
		if w := m.Rect.Dx(); w != (cfg.Width+7)/8 {
			b.Fatalf("decoded width %d, want %d", w, (cfg.Width+7)/8)
		}
	}
	run()
	b.ResetTimer()
	cpu0 := cpustat.Process()
	for b.Loop() {
		run()
	}
	b.ReportMetric(cpustat.MillisPer(cpu0, b.N), "cpu-ms/op")
}
