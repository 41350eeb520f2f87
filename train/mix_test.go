package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/artnet/artnet/models/spec"
)

// runSoftFocal evaluates SoftTargets + SoftFocalLoss for labels a, b mixed with lam.
func runSoftFocal(t *testing.T, logits [][]float32, a, b []int32, lam []float32, smoothing, gamma float64) (loss float64, target []float32, mask []float32) {
	t.Helper()
	backend := lossBackend(t)
	exec, err := graph.NewExec(backend, func(lg, a, b, lam *graph.Node) []*graph.Node {
		tg, m := SoftTargets(a, b, lam, lg.Shape().Dimensions[1], smoothing)
		return []*graph.Node{SoftFocalLoss(lg, tg, m, gamma), tg, m}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(logits, a, b, lam)
	if err != nil {
		t.Fatal(err)
	}
	return scalar(out[0]), tensors.MustCopyFlatData[float32](out[1]), tensors.MustCopyFlatData[float32](out[2])
}

// TestSoftFocalLoss: with one-hot targets the soft loss is FocalLoss; label smoothing and a
// mixed pair give the hand-computed −Σ_c t_c (1−p_c)^γ log p_c; an example whose own or
// partner's label is absent is masked for that task (the rule chosen: both must be present).
func TestSoftFocalLoss(t *testing.T) {
	logits := [][]float32{{2, -1, 0.5}, {0.1, 0.2, 3}, {-2, 1, 1}, {0, 0, 0}}
	labels := []int32{0, 2, -1, 1}
	hard, _, _ := runFocal(t, logits, labels, 2)
	soft, _, mask := runSoftFocal(t, logits, labels, labels, []float32{1, 1, 1, 1}, 0, 2)
	if !near(soft, hard, 1e-6) {
		t.Errorf("one-hot soft focal loss %g, FocalLoss %g", soft, hard)
	}
	if want := []float32{1, 1, 0, 1}; !slices.Equal(mask, want) {
		t.Errorf("mask %v, want %v", mask, want)
	}

	// Hand computation: smoothing ε and mixing λ.
	const eps, gamma = 0.1, 2.0
	partner := []int32{1, -1, 0, 1} // example 1's partner lacks the label, example 2 lacks its own
	lam := []float32{0.7, 0.6, 0.5, 0.25}
	got, target, mask := runSoftFocal(t, logits, labels, partner, lam, eps, gamma)
	if want := []float32{1, 0, 0, 1}; !slices.Equal(mask, want) {
		t.Errorf("mixed mask %v, want %v (masked when either label is absent)", mask, want)
	}
	var sum float64
	n := 0
	for b, row := range logits {
		if labels[b] < 0 || partner[b] < 0 {
			continue
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v))
		}
		var fl float64
		for c, v := range row {
			tc := eps / 3
			if int32(c) == labels[b] {
				tc += (1 - eps) * float64(lam[b])
			}
			if int32(c) == partner[b] {
				tc += (1 - eps) * (1 - float64(lam[b]))
			}
			if d := float64(target[b*3+c]) - tc; math.Abs(d) > 1e-6 {
				t.Errorf("target[%d][%d] = %g, want %g", b, c, target[b*3+c], tc)
			}
			p := math.Exp(float64(v)) / z
			fl -= tc * math.Pow(1-p, gamma) * math.Log(p)
		}
		sum += fl
		n++
	}
	if want := sum / float64(n); !near(got, want, 1e-5) {
		t.Errorf("soft focal loss %g, hand-computed %g", got, want)
	}
}

// TestMixBatch: mixup mixes example b with B−1−b by the batch's λ and gives the partner's
// labels; CutMix swaps one box between partners and λ is the area kept; both are functions of
// (seed, stream position) only; mix_prob 0.5 leaves about half the batches alone.
func TestMixBatch(t *testing.T) {
	const size, batch = 8, 6
	nt := len(spec.Tasks)
	per := 3 * size * size
	rng := rand.New(rand.NewPCG(1, 2))
	orig := make([]float32, batch*per)
	for i := range orig {
		orig[i] = float32(rng.NormFloat64())
	}
	labels := make([]int32, batch*nt)
	for i := range labels {
		labels[i] = int32(i % 5)
	}
	labels[1*nt+1] = -1
	run := func(m Mix, pos int) ([]float32, []int32, []float32, float64, string) {
		img := append([]float32(nil), orig...)
		partner := make([]int32, len(labels))
		lam := make([]float32, batch)
		l, kind := m.mixBatch(5, pos, img, labels, partner, lam, size)
		return img, partner, lam, l, kind
	}

	img, partner, lam, l, kind := run(Mix{Mixup: 0.4}, 100)
	if kind != "mixup" || !(l > 0 && l < 1) {
		t.Fatalf("mixup: kind %q λ %g", kind, l)
	}
	for b := range batch {
		q := batch - 1 - b
		if lam[b] != float32(l) {
			t.Errorf("λ[%d] = %g, want the batch's %g", b, lam[b], l)
		}
		for k := range nt {
			if partner[b*nt+k] != labels[q*nt+k] {
				t.Errorf("partner label [%d][%d] = %d, want example %d's %d", b, k, partner[b*nt+k], q, labels[q*nt+k])
			}
		}
		for i := range per {
			want := float32(l)*orig[b*per+i] + float32(1-l)*orig[q*per+i]
			if math.Abs(float64(img[b*per+i]-want)) > 1e-5 {
				t.Fatalf("mixup pixel %d of example %d = %g, want %g", i, b, img[b*per+i], want)
			}
		}
	}
	again, _, _, l2, _ := run(Mix{Mixup: 0.4}, 100)
	if l2 != l || !slices.Equal(again, img) {
		t.Error("mixup is not a function of (seed, position)")
	}
	if _, _, _, l3, _ := run(Mix{Mixup: 0.4}, 101); l3 == l {
		t.Error("the next position drew the same λ")
	}

	img, _, _, l, kind = run(Mix{CutMix: 1}, 7)
	if kind != "cutmix" {
		t.Fatalf("kind %q, want cutmix", kind)
	}
	for b := range batch {
		q := batch - 1 - b
		own, other := 0, 0
		for i := range per {
			switch img[b*per+i] {
			case orig[b*per+i]:
				own++
			case orig[q*per+i]:
				other++
			default:
				t.Fatalf("cutmix pixel %d of example %d is neither its own nor its partner's", i, b)
			}
		}
		if got := float64(own) / float64(per); math.Abs(got-l) > 1e-9 {
			t.Errorf("example %d keeps %g of its pixels, λ says %g", b, got, l)
		}
	}

	mixed := 0
	for pos := range 200 {
		if _, _, _, _, kind := run(Mix{Mixup: 1, CutMix: 1, Prob: 0.5}, pos); kind != "" {
			mixed++
		}
	}
	if mixed < 70 || mixed > 130 {
		t.Errorf("mix_prob 0.5 mixed %d of 200 batches", mixed)
	}
	if _, p, lam, l, kind := run(Mix{}, 3); kind != "" || l != 1 || lam[0] != 1 || p[0] != labels[0] {
		t.Errorf("no mixing configured, yet kind %q λ %g", kind, l)
	}
}

// TestBetaSample: Beta(α, α) has mean ½ and variance 1/(4(2α+1)).
func TestBetaSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, a := range []float64{0.2, 1, 4} {
		var s, s2 float64
		const n = 20000
		for range n {
			x := betaSample(rng, a)
			if x < 0 || x > 1 {
				t.Fatalf("Beta(%g) drew %g", a, x)
			}
			s += x
			s2 += x * x
		}
		mean, v := s/n, s2/n-(s/n)*(s/n)
		if want := 1 / (4 * (2*a + 1)); math.Abs(mean-0.5) > 0.01 || math.Abs(v-want) > 0.1*want {
			t.Errorf("Beta(%g): mean %g variance %g, want 0.5 and %g", a, mean, v, want)
		}
	}
}
