package train

// Mixup and CutMix (timm's Mixup in its default "batch" mode): one decision and one λ per
// batch, example b mixed with example B−1−b (the batch flipped), on the normalized images, on
// the host, before the step. The labels are mixed in the loss (SoftTargets): each task's
// target is λ·onehot(own) + (1−λ)·onehot(partner's), and a task either image lacks is masked.

import (
	"math"
	"math/rand/v2"
)

// Mix configures mixup/CutMix (Options.Mix; data.mixup, data.cutmix, data.mix_prob,
// data.mix_switch_prob).
type Mix struct {
	Mixup, CutMix float64 // Beta(α, α) parameters (0: that one off)
	Prob          float64 // probability that a batch is mixed (0 → 1)
	SwitchProb    float64 // with both on, probability of CutMix for a mixed batch (0 → 0.5)
}

// On reports whether any mixing is configured.
func (m Mix) On() bool { return m.Mixup > 0 || m.CutMix > 0 }

// mixBatch mixes the batch (images [B,3,S,S] flat, labels [B·tasks] flat) in place as the
// batch at stream position pos is mixed (a function of seed and pos only), writes the partner's
// labels into partner and each example's λ into lam, and returns the batch's λ and kind
// ("", "mixup" or "cutmix").
func (m Mix) mixBatch(seed int64, pos int, images []float32, labels, partner []int32, lam []float32, size int) (float64, string) {
	batch := len(lam)
	nt := len(labels) / batch
	for b := range batch {
		lam[b] = 1
	}
	copy(partner, labels)
	if !m.On() {
		return 1, ""
	}
	rng := rand.New(rand.NewPCG(uint64(seed)^0x510e527fade682d1, uint64(pos)))
	prob := m.Prob
	if prob == 0 {
		prob = 1
	}
	if rng.Float64() >= prob {
		return 1, ""
	}
	cut := m.CutMix > 0
	if m.Mixup > 0 && m.CutMix > 0 {
		sw := m.SwitchProb
		if sw == 0 {
			sw = 0.5
		}
		cut = rng.Float64() < sw
	}
	for b := range batch {
		copy(partner[b*nt:(b+1)*nt], labels[(batch-1-b)*nt:(batch-b)*nt])
	}
	per := 3 * size * size
	var l float64
	kind := "mixup"
	if cut {
		kind = "cutmix"
		l = betaSample(rng, m.CutMix)
		y0, y1, x0, x1 := cutmixBox(rng, size, l)
		l = 1 - float64((y1-y0)*(x1-x0))/float64(size*size)
		for b := range batch / 2 {
			p, q := images[b*per:(b+1)*per], images[(batch-1-b)*per:(batch-b)*per]
			for ch := range 3 {
				for y := y0; y < y1; y++ {
					o := ch*size*size + y*size
					for x := x0; x < x1; x++ {
						p[o+x], q[o+x] = q[o+x], p[o+x]
					}
				}
			}
		}
	} else {
		l = betaSample(rng, m.Mixup)
		a, c := float32(l), float32(1-l)
		for b := range batch / 2 {
			p, q := images[b*per:(b+1)*per], images[(batch-1-b)*per:(batch-b)*per]
			for i := range p {
				p[i], q[i] = a*p[i]+c*q[i], a*q[i]+c*p[i]
			}
		}
	}
	for b := range batch {
		lam[b] = float32(l)
	}
	return l, kind
}

// cutmixBox is timm's rand_bbox: a box with sides √(1−λ) of the image's, centred uniformly,
// clipped to the image: rows [y0,y1), columns [x0,x1).
func cutmixBox(rng *rand.Rand, size int, lam float64) (y0, y1, x0, x1 int) {
	r := math.Sqrt(1 - lam)
	cw, ch := int(float64(size)*r), int(float64(size)*r)
	cy, cx := rng.IntN(size), rng.IntN(size)
	clip := func(v int) int { return min(max(v, 0), size) }
	return clip(cy - ch/2), clip(cy + ch/2), clip(cx - cw/2), clip(cx + cw/2)
}

// betaSample draws from Beta(α, α) as X/(X+Y) of two Gamma(α) draws.
func betaSample(rng *rand.Rand, alpha float64) float64 {
	x, y := gammaSample(rng, alpha), gammaSample(rng, alpha)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// gammaSample draws from Gamma(α, 1) (Marsaglia and Tsang 2000; α < 1 through α+1 and U^(1/α)).
func gammaSample(rng *rand.Rand, alpha float64) float64 {
	if alpha < 1 {
		u := rng.Float64()
		return gammaSample(rng, alpha+1) * math.Pow(u, 1/alpha)
	}
	d := alpha - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
