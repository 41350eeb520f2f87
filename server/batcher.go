package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
)

// ErrQueueFull is returned (wrapped) when a request finds the queue full; the server answers
// 503 with Retry-After.
var ErrQueueFull = errors.New("queue full")

// ErrShuttingDown is returned (wrapped) when a request arrives while the server stops.
var ErrShuttingDown = errors.New("server is shutting down")

// job is one request's images waiting for a model run.
type job struct {
	ctx    context.Context
	queued time.Time
	n      int       // images
	images []float32 // n × 3 × H × W
	done   chan jobResult
}

type jobResult struct {
	res     *predict.Result // this job's rows only
	version string          // of the model that ran it
	err     error
}

// batcher collects jobs into batches of at most `batch` images and runs each batch with one
// model Run, at most Workers runs at a time. Admission (admit, at submit) bounds the jobs
// queued — decoded and ready, not yet in a run — to `queue`.
type batcher struct {
	models   *modelSlot
	mcfg     spec.Config // the served configuration (reload refuses another), to check each result against
	batch    int
	maxDelay time.Duration
	imgLen   int
	queue    int64
	base     context.Context // runs use it; cancelled only by abort
	abort    context.CancelFunc
	met      *metrics
	log      *slog.Logger
	tracer   trace.Tracer // spans "queue wait" and "batch run" of each job (tracing.go)

	ch       chan *job
	wake     chan struct{}  // an arrival ended without a job (arrival.cancel)
	free     chan []float32 // input buffers of idle runners (Workers of them)
	pending  atomic.Int64   // admitted (ready), not yet taken from ch
	decoding atomic.Int64   // arrivals: reading or decoding, not yet submitted

	mu     sync.RWMutex
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newBatcher(models *modelSlot, mcfg spec.Config, cfg Config, imgLen int, met *metrics, log *slog.Logger) *batcher {
	base, abort := context.WithCancel(context.Background())
	return &batcher{
		models: models, mcfg: mcfg, batch: cfg.Batch, maxDelay: cfg.MaxDelay, imgLen: imgLen, queue: int64(cfg.Queue),
		base: base, abort: abort, met: met, log: log,
		ch: make(chan *job, cfg.Queue), wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
}

// start runs the collector, which forms batches and runs up to workers of them at a time,
// until close.
func (b *batcher) start(workers int) {
	b.free = make(chan []float32, workers)
	for i := 0; i < workers; i++ {
		b.free <- make([]float32, 0, b.batch*b.imgLen)
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.collect()
	}()
}

// close stops accepting jobs, runs what is queued, and waits for the collector and the runs.
// After abort, running and queued jobs fail instead.
func (b *batcher) close() {
	defer b.abort()
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// arrival is a request on its way to the batcher: reading its body, waiting for memory,
// decoding. The collector holds a batch open (at most MaxDelay) while any is on its way.
// Exactly one of cancel (it will not be queued) or do (it is) ends it; cancel after do is a
// no-op, so callers may defer it.
type arrival struct {
	b    *batcher
	done atomic.Bool
}

// arriving starts an arrival.
func (b *batcher) arriving() *arrival {
	b.decoding.Add(1)
	return &arrival{b: b}
}

// cancel ends the arrival without a job and wakes the collector if it waits for it.
func (a *arrival) cancel() {
	if a.done.CompareAndSwap(false, true) {
		a.b.decoding.Add(-1)
		select {
		case a.b.wake <- struct{}{}:
		default:
		}
	}
}

// admit takes a model-queue slot for a request whose input is ready. Every successful admit
// is followed by the job's send (submit).
func (b *batcher) admit() error {
	for {
		p := b.pending.Load()
		if p >= b.queue {
			return fmt.Errorf("%w: %d requests waiting", ErrQueueFull, p)
		}
		if b.pending.CompareAndSwap(p, p+1) {
			return nil
		}
	}
}

// submit queues a job: it takes a queue slot (ErrQueueFull when none is free) and ends the
// arrival; it never blocks (the channel holds Queue jobs).
func (b *batcher) submit(j *job, a *arrival) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrShuttingDown
	}
	if err := b.admit(); err != nil {
		return err
	}
	// End the arrival before the send: the collector, seeing decoding == 0 with an empty
	// queue in between, may run early (harmless); after the send would let it wait for
	// MaxDelay for a job it has already taken.
	if a.done.CompareAndSwap(false, true) {
		b.decoding.Add(-1)
	}
	b.ch <- j
	return nil
}

// do queues a job whose images are ready and waits for its result or for ctx to end. On a
// ctx error the job may still be referenced by the batcher (which will drop it), so the
// caller must not reuse images.
func (b *batcher) do(ctx context.Context, images []float32, n int, a *arrival) (*predict.Result, error) {
	res, _, err := b.doVersion(ctx, images, n, a)
	return res, err
}

// doVersion is do that also returns the version of the model that ran the job.
func (b *batcher) doVersion(ctx context.Context, images []float32, n int, a *arrival) (*predict.Result, string, error) {
	j := &job{ctx: ctx, queued: time.Now(), n: n, images: images, done: make(chan jobResult, 1)}
	if err := b.submit(j, a); err != nil {
		return nil, "", err
	}
	select {
	case r := <-j.done:
		return r.res, r.version, r.err
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

func (b *batcher) take() (*job, bool) {
	select {
	case j := <-b.ch:
		b.pending.Add(-1)
		return j, true
	default:
		return nil, false
	}
}

// collect is the one goroutine that forms batches: it waits for a free runner (one of
// Workers input buffers), then for a first job, then fills the batch, and starts its run.
// Being alone, it sees every job that is queued while it waits, so only a request that stops
// arriving without a job (arrival.cancel) needs to wake it.
func (b *batcher) collect() {
	var runs sync.WaitGroup
	defer runs.Wait()
	var carry *job
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		buf := <-b.free
		first := carry
		carry = nil
		if first == nil {
			select {
			case j := <-b.ch:
				b.pending.Add(-1)
				first = j
			case <-b.stop:
				j, ok := b.take() // drain what is still queued
				if !ok {
					return
				}
				first = j
			}
		}
		jobs := []*job{first}
		total := first.n
		timer.Reset(b.maxDelay)
	fill:
		for total < b.batch {
			// Take what is queued; wait only while more admitted requests are on their way.
			j, ok := b.take()
			if !ok {
				if b.decoding.Load() == 0 {
					break
				}
				select {
				case j = <-b.ch:
					b.pending.Add(-1)
				case <-b.wake:
					continue // look again: maybe nothing is on its way any more
				case <-timer.C:
					break fill
				case <-b.stop:
					if j, ok = b.take(); !ok {
						break fill
					}
				}
			}
			if total+j.n > b.batch {
				carry = j
				break
			}
			jobs = append(jobs, j)
			total += j.n
		}
		timer.Stop()
		runs.Add(1)
		go func() {
			defer runs.Done()
			b.free <- b.run(jobs, buf)
		}()
	}
}

// run drops the jobs whose callers are gone, runs the others as one batch and hands each its
// rows. It returns the (possibly grown) input buffer for reuse.
func (b *batcher) run(jobs []*job, buf []float32) []float32 {
	live := jobs[:0]
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			b.met.dropped.Inc()
			j.done <- jobResult{err: err}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return buf
	}
	buf = buf[:0]
	total := 0
	for _, j := range live {
		buf = append(buf, j.images...)
		total += j.n
	}
	// Cancel the run if every caller goes away meanwhile.
	ctx, cancel := context.WithCancel(b.base)
	defer cancel()
	var left atomic.Int64
	left.Store(int64(len(live)))
	for _, j := range live {
		stopAfter := context.AfterFunc(j.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stopAfter()
	}
	// The run holds a reference on the model it uses: a reload meanwhile lets it finish, and
	// closes the old model after.
	var version string
	var res *predict.Result
	m, err := b.models.acquire()
	if err == nil {
		version = m.version
		start := time.Now()
		res, err = b.safeRun(ctx, m.p, buf, total)
		m.release()
		end := time.Now()
		b.met.runSeconds.Observe(end.Sub(start).Seconds())
		b.met.batchSize.Observe(float64(total))
		if b.tracer != nil {
			for _, j := range live {
				stageAt(b.tracer, j.ctx, "queue wait", j.queued, start)
				stageAt(b.tracer, j.ctx, "batch run", start, end, attribute.Int("batch.images", total),
					attribute.Int("request.images", j.n), attribute.String("model.version", version))
			}
		}
	}
	switch {
	case errors.Is(err, ErrModelUnloaded): // answered 503, not a failure
	case err == nil:
		err = predict.CheckResult(b.mcfg, res, total) // the result's shapes against the served config
	case b.base.Err() != nil:
		err = fmt.Errorf("%w: model run cancelled (%v)", ErrShuttingDown, err)
	}
	if err != nil && !errors.Is(err, ErrModelUnloaded) {
		b.log.Error("model run failed", "batch", total, "err", err)
	}
	off := 0
	for _, j := range live {
		if err != nil {
			j.done <- jobResult{err: err}
		} else {
			j.done <- jobResult{res: rows(res, off, j.n), version: version}
		}
		off += j.n
	}
	return buf
}

func (b *batcher) safeRun(ctx context.Context, model predict.Predictor, buf []float32, n int) (res *predict.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("model run panicked: %v", p)
		}
	}()
	return model.Run(ctx, buf, n)
}

// rows returns images off … off+n-1 of res as a result of its own (sharing res's memory).
func rows(res *predict.Result, off, n int) *predict.Result {
	out := &predict.Result{Batch: n, Probs: make(map[string][]float32, len(res.Probs))}
	for t, v := range res.Probs {
		w := len(v) / res.Batch
		out.Probs[t] = v[off*w : (off+n)*w : (off+n)*w]
	}
	w := len(res.Attention) / res.Batch
	out.Attention = res.Attention[off*w : (off+n)*w : (off+n)*w]
	return out
}
