package train

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// testImage is an 8-bit [3,S,S] image with distinct, varied values.
func testImage(size int) []uint8 {
	img := make([]uint8, 3*size*size)
	for i := range img {
		img[i] = uint8((i*37 + i/7*11) % 256)
	}
	return img
}

// TestAugmentOps: each operation does what it says on a known image.
func TestAugmentOps(t *testing.T) {
	const size = 8
	plane := size * size
	in := testImage(size)
	at := func(img []uint8, ch, x, y int) uint8 { return img[ch*plane+y*size+x] }
	run := func(op augOp, mag float64) []uint8 { return applyOp(append([]uint8(nil), in...), size, op, mag) }

	if out := run(opIdentity, 0); !slices.Equal(out, in) {
		t.Error("Identity changed the image")
	}
	out := run(opSolarize, 128)
	for i, v := range in {
		want := v
		if v >= 128 {
			want = 255 - v
		}
		if out[i] != want {
			t.Fatalf("Solarize(128): %d → %d, want %d", v, out[i], want)
		}
	}
	out = run(opPosterize, 3)
	for i, v := range in {
		if out[i] != v&0xE0 {
			t.Fatalf("Posterize(3 bits): %d → %d, want %d", v, out[i], v&0xE0)
		}
	}
	out = run(opBrightness, 0.5)
	for i, v := range in {
		if want := min(math.Round(float64(v)*1.5), 255); float64(out[i]) != want {
			t.Fatalf("Brightness(+0.5): %d → %d, want %g", v, out[i], want)
		}
	}
	out = run(opTranslateX, 2)
	out2 := run(opShearX, 0.5)
	out3 := run(opRotate, 90)
	for ch := range 3 {
		for y := range size {
			for x := range size {
				want := uint8(0)
				if x >= 2 {
					want = at(in, ch, x-2, y)
				}
				if at(out, ch, x, y) != want {
					t.Fatalf("TranslateX(2) at (%d,%d): %d, want %d", x, y, at(out, ch, x, y), want)
				}
				want = 0
				if sx := int(math.Round(float64(x) + 0.5*float64(y))); sx < size {
					want = at(in, ch, sx, y)
				}
				if at(out2, ch, x, y) != want {
					t.Fatalf("ShearX(0.5) at (%d,%d): %d, want %d", x, y, at(out2, ch, x, y), want)
				}
				// 90°: output (x, y) reads input (size−1−y, x).
				if got, want := at(out3, ch, x, y), at(in, ch, size-1-y, x); got != want {
					t.Fatalf("Rotate(90) at (%d,%d): %d, want %d", x, y, got, want)
				}
			}
		}
	}
	out = run(opAutoContrast, 0)
	for ch := range 3 {
		p := out[ch*plane : (ch+1)*plane]
		if slices.Min(p) != 0 || slices.Max(p) != 255 {
			t.Errorf("AutoContrast channel %d spans [%d,%d], want [0,255]", ch, slices.Min(p), slices.Max(p))
		}
	}
	big := testImage(32) // PIL's equalize leaves images under 256 pixels a channel alone
	dark := make([]uint8, len(big))
	for i, v := range big {
		dark[i] = v / 4 // 0..63
	}
	out = applyOp(append([]uint8(nil), dark...), 32, opEqualize, 0)
	for i := range dark {
		for j := range dark {
			if dark[i] < dark[j] && out[i] > out[j] {
				t.Fatalf("Equalize is not monotone: %d→%d but %d→%d", dark[i], out[i], dark[j], out[j])
			}
		}
	}
	if slices.Max(out) < 200 {
		t.Errorf("Equalize left a 0..63 image at most %d", slices.Max(out))
	}
	out = run(opColor, -1) // factor 0: grey
	for k := range plane {
		if out[k] != out[plane+k] || out[k] != out[2*plane+k] {
			t.Fatalf("Color(−1) pixel %d is not grey: %d %d %d", k, out[k], out[plane+k], out[2*plane+k])
		}
	}
	out = run(opContrast, -1) // factor 0: the mean grey everywhere
	if slices.Min(out) != slices.Max(out) {
		t.Errorf("Contrast(−1) left values in [%d,%d]", slices.Min(out), slices.Max(out))
	}
	flat := make([]uint8, len(in))
	for i := range flat {
		flat[i] = 90
	}
	if out := applyOp(append([]uint8(nil), flat...), size, opSharpness, 0.9); !slices.Equal(out, flat) {
		t.Error("Sharpness changed a flat image")
	}
	if out := run(opSharpness, 0.9); slices.Equal(out, in) {
		t.Error("Sharpness(+0.9) left a varied image unchanged")
	}
}

// TestDrawAugment: TrivialAugment draws one of the 14 operations with a magnitude from its
// whole range and either sign; RandAugment draws two at magnitude bin 9.
func TestDrawAugment(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	seen := map[augOp]bool{}
	neg, pos := 0, 0
	for range 3000 {
		st := drawAugment(rng, AugmentTrivial, 224)
		if len(st) != 1 {
			t.Fatalf("trivial drew %d ops", len(st))
		}
		seen[st[0].op] = true
		if st[0].op == opRotate {
			if math.Abs(st[0].mag) > 135 {
				t.Fatalf("rotation %g° beyond 135", st[0].mag)
			}
			if st[0].mag < 0 {
				neg++
			} else {
				pos++
			}
		}
		if st[0].op == opTranslateX && math.Abs(st[0].mag) > 32 {
			t.Fatalf("translation %g px beyond 32 at 224 px", st[0].mag)
		}
	}
	if len(seen) != int(numAugOps) || neg == 0 || pos == 0 {
		t.Errorf("trivial drew %d of %d ops, rotations %d negative %d positive", len(seen), numAugOps, neg, pos)
	}
	for range 300 {
		st := drawAugment(rng, AugmentRand, 224)
		if len(st) != 2 {
			t.Fatalf("randaugment drew %d ops", len(st))
		}
		for _, s := range st {
			want := map[augOp]float64{opRotate: 9, opShearX: 0.09, opSolarize: 255 - 255*9.0/30, opPosterize: 7}[s.op]
			if want != 0 && math.Abs(math.Abs(s.mag)-want) > 1e-9 {
				t.Errorf("randaugment %v magnitude %g, want ±%g (bin 9)", s.op, s.mag, want)
			}
		}
	}
}

// TestRandomErase: with probability 1 one rectangle of 2–33% of the image is noise and
// nothing else changes; probability 0 changes nothing; 0.5 erases about half the time.
func TestRandomErase(t *testing.T) {
	const size = 32
	rng := rand.New(rand.NewPCG(2, 3))
	x := make([]float32, 3*size*size)
	for i := range x {
		x[i] = 7 // outside N(0,1)'s reach
	}
	for range 50 {
		y := slices.Clone(x)
		top, left, h, w := randomErase(rng, y, size, 1)
		if h == 0 || w == 0 {
			t.Fatal("probability 1 erased nothing")
		}
		if f := float64(h*w) / (size * size); f < 0.015 || f > 0.36 {
			t.Errorf("erased %d×%d = %g of the image", h, w, f)
		}
		changed := 0
		for ch := range 3 {
			for yy := range size {
				for xx := range size {
					inside := yy >= top && yy < top+h && xx >= left && xx < left+w
					if d := y[ch*size*size+yy*size+xx] != 7; d != inside {
						t.Fatalf("pixel (%d,%d) changed %v, inside the rectangle %v", xx, yy, d, inside)
					}
					if inside {
						changed++
					}
				}
			}
		}
		if changed != 3*h*w {
			t.Fatalf("changed %d values, want %d", changed, 3*h*w)
		}
	}
	y := slices.Clone(x)
	if _, _, h, _ := randomErase(rng, y, size, 0); h != 0 || !slices.Equal(x, y) {
		t.Error("probability 0 erased")
	}
	n := 0
	for range 400 {
		if _, _, h, _ := randomErase(rng, slices.Clone(x), size, 0.5); h > 0 {
			n++
		}
	}
	if n < 160 || n > 240 {
		t.Errorf("probability 0.5 erased %d of 400", n)
	}
}

// TestWikiArtAugmentPolicy: data.augment and data.random_erasing act on the crop of a run
// without them (same crop, flip, jitter), the policy through the 8-bit image before
// normalization, erasing after; the result is a function of (seed, position, index).
func TestWikiArtAugmentPolicy(t *testing.T) {
	cfg := smallConfig()
	root := t.TempDir()
	samples := writeWikiArtImages(t, root, 3, cfg)
	o := WikiArtOptions{Images: root, Config: cfg, Augment: true, Seed: 5, Jitter: 0.2}
	plain, err := NewWikiArt(context.Background(), samples, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{AugmentTrivial, AugmentRand} {
		p := o
		p.Policy, p.RandomErasing = policy, 0.5
		a, err := NewWikiArt(context.Background(), samples, p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewWikiArt(context.Background(), samples, p)
		s := cfg.ImageSize
		n := 3 * s * s
		x, y, want := make([]float32, n), make([]float32, n), make([]float32, n)
		differ := 0
		for pos := range 12 {
			if _, err := a.ExampleAt(pos, 2, x); err != nil {
				t.Fatal(err)
			}
			if _, err := b.ExampleAt(pos, 2, y); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x, y) {
				t.Fatalf("%s: position %d is not reproducible", policy, pos)
			}
			if _, err := plain.ExampleAt(pos, 2, want); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(p.Seed)^0xa54ff53a5f1d36f1, uint64(pos)<<24^2))
			plain.denormalize(want)
			applyAugment(want, s, drawAugment(rng, policy, s))
			plain.normalize(want)
			randomErase(rng, want, s, p.RandomErasing)
			if d := maxAbsDiff(x, want); d > 1e-5 {
				t.Fatalf("%s: position %d differs by %g from the plain crop augmented", policy, pos, d)
			}
			if _, err := plain.ExampleAt(pos, 2, y); err == nil && maxAbsDiff(x, y) > 0.05 {
				differ++
			}
		}
		if differ < 6 {
			t.Errorf("%s: only %d of 12 positions differ from the plain augmentation", policy, differ)
		}
	}
	bad := o
	bad.Policy = "autoaugment"
	if _, err := NewWikiArt(context.Background(), samples, bad); err == nil {
		t.Error("unknown policy accepted")
	}
}
