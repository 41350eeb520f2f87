package train

// The training stream: which example each position of the infinite stream reads (epochOrder),
// and loading a batch of them with labels checked and a bad example reported, not panicked on.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"

	"github.com/artnet/artnet/models/spec"
)

// epochOrder maps a position in the infinite stream of training examples to an example index:
// epoch e = pos / n is a permutation of 0..n-1 seeded by (seed, e). Step 0's first example is
// at position first (Options.StreamStart).
type epochOrder struct {
	n       int
	seed    int64
	sampler Sampler
	first   int
	epoch   int
	perm    []int
}

// rngSeed is the seed of a fresh run's random state: Seed itself for a run that starts the
// stream (so runs before StreamStart existed keep their dropout masks), else Seed mixed with
// the stream position.
func rngSeed(seed int64, streamStart int) int64 {
	if streamStart == 0 {
		return seed
	}
	return seed ^ int64(uint64(streamStart)*0x9e3779b97f4a7c15)
}

func (e *epochOrder) at(pos int) int {
	ep := pos / e.n
	if e.perm == nil || ep != e.epoch {
		if e.sampler != nil {
			e.perm = e.sampler(e.seed, ep)
			if len(e.perm) != e.n {
				panic(fmt.Sprintf("train: Sampler returned %d indices for epoch %d, want %d", len(e.perm), ep, e.n))
			}
		} else {
			rng := rand.New(rand.NewPCG(uint64(e.seed)^0x6a09e667f3bcc908, uint64(ep)))
			e.perm = rng.Perm(e.n)
		}
		e.epoch = ep
	}
	return e.perm[pos%e.n]
}

// batchBuf is one training batch: its stream positions, example indices, pixels and labels.
type batchBuf struct {
	idx, pos []int
	images   []float32
	labels   []int32
}

func newBatchBuf(batch int, cfg spec.Config) *batchBuf {
	return &batchBuf{idx: make([]int, batch), pos: make([]int, batch),
		images: make([]float32, batch*3*cfg.ImageSize*cfg.ImageSize), labels: make([]int32, batch*len(spec.Tasks))}
}

// plan sets the positions and example indices of step's batch.
func (b *batchBuf) plan(order *epochOrder, step, batch int) {
	for k := range b.idx {
		b.pos[k] = order.first + step*batch + k
		b.idx[k] = order.at(b.pos[k])
	}
}

// loadBatch fills images and labels with examples idx (evaluation transform), loading them on
// up to GOMAXPROCS goroutines (all of which end before it returns). Labels are checked against
// the classes of cfg. An index < 0 (padding) gives a zero image and absent labels.
func loadBatch(ctx context.Context, ds Dataset, cfg spec.Config, idx []int, images []float32, labels []int32) error {
	per := 3 * cfg.ImageSize * cfg.ImageSize
	nt := len(spec.Tasks)
	workers := min(runtime.GOMAXPROCS(0), len(idx))
	errs := make([]error, len(idx))
	if err := forEach(ctx, len(idx), workers, func() func(int) {
		return func(b int) {
			img := images[b*per : (b+1)*per]
			lbOut := labels[b*nt : (b+1)*nt]
			if idx[b] < 0 {
				clear(img)
				for k := range lbOut {
					lbOut[k] = -1
				}
				return
			}
			errs[b] = loadExample(ds, nil, cfg, idx[b], 0, img, lbOut)
		}
	}); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// loadExample writes example i into img and its labels into lbOut: through pds.ExampleAt at
// stream position pos when pds is set (training), else ds.Example. A panic in the data set's
// code, or a label outside cfg's classes, is an error naming the example.
func loadExample(ds Dataset, pds PositionalDataset, cfg spec.Config, i, pos int, img []float32, lbOut []int32) error {
	var lb Labels
	var err error
	if pds != nil {
		lb, err = safeExampleAt(pds, pos, i, img)
	} else {
		lb, err = safeExample(ds, i, img)
	}
	if err == nil {
		err = checkLabels(cfg, lb)
	}
	if err != nil {
		return fmt.Errorf("example %d: %w", i, err)
	}
	copy(lbOut, lb[:])
	return nil
}

// safeExample calls ds.Example, turning a panic in the data set's code into an error.
func safeExample(ds Dataset, i int, img []float32) (lb Labels, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data set panicked: %v", r)
		}
	}()
	return ds.Example(i, img)
}

func safeExampleAt(ds PositionalDataset, pos, i int, img []float32) (lb Labels, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data set panicked: %v", r)
		}
	}()
	return ds.ExampleAt(pos, i, img)
}

func checkLabels(cfg spec.Config, lb Labels) error {
	for k, task := range spec.Tasks {
		if n := cfg.NumClasses(task); lb[k] < -1 || int(lb[k]) >= n {
			return fmt.Errorf("%s label %d out of range [0,%d) (−1 = absent)", task, lb[k], n)
		}
	}
	return nil
}

func catchPanic(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	fn()
	return nil
}
