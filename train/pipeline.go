package train

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/artnet/artnet/models/spec"
)

// batchStream is the training input pipeline: a feeder goroutine plans the batches of steps
// [start, end) in order (stream positions and example indices), and `workers` goroutines load
// their examples (decode → augment → into the batch buffer) as a flat stream, so the decode of
// one batch overlaps with the next and with the training step. At most prefetch batches wait
// ahead of the one the step uses: memory is (prefetch+1) batch buffers plus what the workers
// hold while decoding, whatever the data set's size. close cancels and waits for every
// goroutine.
type batchStream struct {
	cancel context.CancelFunc
	ready  chan *pendingBatch
	free   chan *batchBuf
	wg     sync.WaitGroup
}

// pendingBatch is one planned batch; done closes once all its examples are loaded (or failed).
type pendingBatch struct {
	buf  *batchBuf
	step int
	left atomic.Int32
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func (p *pendingBatch) finish(err error) {
	if err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
	}
	if p.left.Add(-1) == 0 {
		close(p.done)
	}
}

type exampleJob struct {
	p *pendingBatch
	b int
}

// newBatchStream starts the pipeline. workers ≤ 0 → GOMAXPROCS; prefetch ≤ 0 → 2.
func newBatchStream(ctx context.Context, ds Dataset, cfg spec.Config, order *epochOrder, batch, start, end, workers, prefetch int) *batchStream {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if prefetch <= 0 {
		prefetch = 2
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &batchStream{cancel: cancel, ready: make(chan *pendingBatch, prefetch), free: make(chan *batchBuf, prefetch+1)}
	for range prefetch + 1 {
		s.free <- newBatchBuf(batch, cfg)
	}
	jobs := make(chan exampleJob, batch)
	pds, _ := ds.(PositionalDataset)
	per := 3 * cfg.ImageSize * cfg.ImageSize
	nt := len(spec.Tasks)
	for range workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for j := range jobs {
				buf, b := j.p.buf, j.b
				err := loadExample(ds, pds, cfg, buf.idx[b], buf.pos[b], buf.images[b*per:(b+1)*per], buf.labels[b*nt:(b+1)*nt])
				j.p.finish(err)
			}
		}()
	}
	s.wg.Add(1)
	go func() { // the feeder: the only user of order
		defer s.wg.Done()
		defer close(jobs)
		defer close(s.ready)
		for step := start; step < end; step++ {
			var buf *batchBuf
			select {
			case buf = <-s.free:
			case <-ctx.Done():
				return
			}
			buf.plan(order, step, batch)
			p := &pendingBatch{buf: buf, step: step, done: make(chan struct{})}
			p.left.Store(int32(batch))
			select {
			case s.ready <- p:
			case <-ctx.Done():
				return
			}
			for b := range batch {
				select {
				case jobs <- exampleJob{p, b}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return s
}

// next returns the next batch once it is loaded, or ctx's error (or the batch's first example
// error). Batches come in step order.
func (s *batchStream) next(ctx context.Context) (*pendingBatch, error) {
	var p *pendingBatch
	select {
	case p = <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p == nil {
		return nil, fmt.Errorf("training input stream ended early")
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p, p.err
}

// release gives a batch's buffer back to the pipeline once the step no longer reads it.
func (s *batchStream) release(p *pendingBatch) { s.free <- p.buf }

// close stops the pipeline and waits for all its goroutines.
func (s *batchStream) close() {
	s.cancel()
	s.wg.Wait()
}
