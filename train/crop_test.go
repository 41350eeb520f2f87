package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/preprocess"
)

// torchvisionCrops runs torchvision's resized_crop (Debian python3-torchvision; else Pillow's
// crop + resize(BILINEAR), which is what it does to a PIL image) on the PNG at path for each
// box, returning the size×size RGB bytes of each.
func torchvisionCrops(t *testing.T, path string, boxes []image.Rectangle, size int) [][]byte {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import PIL").Run(); err != nil {
		testenv.Missing(t, "/usr/bin/python3 with Pillow for the torchvision crop reference", "apt-get install python3-pil")
	}
	type box struct{ I, J, H, W int }
	var bs []box
	for _, b := range boxes {
		bs = append(bs, box{b.Min.Y, b.Min.X, b.Dy(), b.Dx()})
	}
	arg, _ := json.Marshal(bs)
	script := `
import json, sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
size = int(sys.argv[3])
try:
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode
    crop = lambda b: F.resized_crop(img, b["I"], b["J"], b["H"], b["W"], [size, size], InterpolationMode.BILINEAR)
except ImportError:
    crop = lambda b: img.crop((b["J"], b["I"], b["J"] + b["W"], b["I"] + b["H"])).resize((size, size), Image.BILINEAR)
for b in json.loads(sys.argv[2]):
    print(crop(b).tobytes().hex())
`
	var stderr bytes.Buffer
	cmd := exec.Command("/usr/bin/python3", "-c", script, path, string(arg), fmt.Sprint(size))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python reference: %v: %s", err, stderr.String())
	}
	var res [][]byte
	for _, line := range strings.Fields(string(out)) {
		var b []byte
		if _, err := fmt.Sscanf(line, "%x", &b); err != nil {
			t.Fatal(err)
		}
		res = append(res, b)
	}
	if len(res) != len(boxes) {
		t.Fatalf("python reference gave %d crops for %d boxes", len(res), len(boxes))
	}
	return res
}

// TestRandomResizedCropIsTorchvisions: on a 157×61 image the crop boxes keep the scale and
// ratio ranges of RandomResizedCrop on the image's own size (not a square), and crop + resize
// gives torchvision's pixels exactly.
func TestRandomResizedCropIsTorchvisions(t *testing.T) {
	const w, h, size = 157, 61, 24
	rng := rand.New(rand.NewPCG(3, 4))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(rng.IntN(256)), uint8(y * 4), 255})
		}
	}
	path := filepath.Join(t.TempDir(), "wide.png")
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var boxes []image.Rectangle
	wide := 0
	for k := range 40 {
		b := RandomResizedCropBox(rand.New(rand.NewPCG(uint64(k), 9)), w, h, 0.08)
		if !b.In(img.Rect) || b.Empty() {
			t.Fatalf("box %v outside the %d×%d image", b, w, h)
		}
		r := float64(b.Dx()) / float64(b.Dy())
		a := float64(b.Dx()*b.Dy()) / (w * h)
		if r < 0.75*0.9 || r > 4.0/3*1.1 || a > 1 || (a < 0.08*0.8 && b.Dx() != w && b.Dy() != h) {
			t.Errorf("box %v: ratio %.3f, area fraction %.3f outside RandomResizedCrop's ranges", b, r, a)
		}
		if b.Dx() > h { // wider than the image is high: impossible in a square cache of side h
			wide++
		}
		boxes = append(boxes, b)
	}
	if wide == 0 {
		t.Error("no crop is wider than the image's height: the crops do not use the true aspect ratio")
	}
	want := torchvisionCrops(t, path, boxes, size)
	dec, err := preprocess.DecodeImageFile(path, preprocess.Options{ImageSize: size, ResizeSize: size, Std: [3]float32{1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 3*size*size)
	for k, b := range boxes {
		preprocess.ResizeInto(dst, dec.SubImage(b), size, [3]float32{}, [3]float32{1, 1, 1})
		diffs := 0
		for p := range size * size {
			for c := range 3 {
				got := int(math.Round(float64(dst[c*size*size+p]) * 255))
				if got != int(want[k][3*p+c]) {
					diffs++
				}
			}
		}
		if diffs > 0 {
			t.Errorf("box %v: %d of %d values differ from torchvision's resized_crop", b, diffs, 3*size*size)
		}
	}
}
