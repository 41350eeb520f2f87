package train

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artnet/artnet/models"
)

// slowSet wraps a data set whose examples take a while and that can fail at one index.
type slowSet struct {
	Dataset
	delay  time.Duration
	failAt int
	loaded atomic.Int64
}

func (s *slowSet) Example(i int, img []float32) (Labels, error) {
	time.Sleep(s.delay)
	s.loaded.Add(1)
	if i == s.failAt {
		return Labels{}, errors.New("unreadable image")
	}
	return s.Dataset.Example(i, img)
}

// settledGoroutines waits until the goroutine count is at most want (or 2 s pass).
func settledGoroutines(want int) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBatchStreamBoundedAndEnds: the pipeline never loads more than prefetch+1 batches ahead
// of the consumer, delivers batches in order with the planned examples, and every goroutine
// ends when it is closed mid-stream, when its context is cancelled, and after an example error.
func TestBatchStreamBoundedAndEnds(t *testing.T) {
	cfg := smallConfig()
	base := runtime.NumGoroutine()
	ds := &slowSet{Dataset: NewSynthetic(cfg, 64, 1), delay: time.Millisecond, failAt: -1}
	order := &epochOrder{n: ds.Len(), seed: 3}
	const batch, prefetch = 4, 2
	s := newBatchStream(context.Background(), ds, cfg, order, batch, 0, 1000, 3, prefetch)
	want := &epochOrder{n: ds.Len(), seed: 3}
	for step := range 3 {
		p, err := s.next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if p.step != step || p.buf.idx[0] != want.at(step*batch) {
			t.Fatalf("batch %d: got step %d, first example %d; want %d", step, p.step, p.buf.idx[0], want.at(step*batch))
		}
		s.release(p)
	}
	time.Sleep(100 * time.Millisecond) // the consumer stalls: the pipeline must stop loading
	if n := ds.loaded.Load(); n > int64((3+prefetch+1)*batch) {
		t.Errorf("%d examples loaded with the consumer at batch 3: more than prefetch+1 = %d batches ahead", n, prefetch+1)
	}
	s.close()
	if n := settledGoroutines(base); n > base {
		t.Errorf("after close: %d goroutines, %d before the stream", n, base)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s = newBatchStream(ctx, ds, cfg, order, batch, 0, 1000, 3, prefetch)
	cancel()
	if _, err := s.next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("next after cancel: %v, want context.Canceled", err)
	}
	s.close()
	if n := settledGoroutines(base); n > base {
		t.Errorf("after cancel: %d goroutines, %d before the stream", n, base)
	}
}

// TestRunGoroutinesEndOnErrorAndCancel: Run stopped by a data error or by its context leaves no
// goroutine behind, and the error names the example.
func TestRunGoroutinesEndOnErrorAndCancel(t *testing.T) {
	o := standInOptions(t.TempDir())
	o.Steps, o.EvalEvery, o.CheckpointEvery = 50, 0, 0
	base := runtime.NumGoroutine()
	ds := &slowSet{Dataset: NewSynthetic(o.Config, 32, 1), failAt: 5}
	_, err := Run(context.Background(), o, ds, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "example 5") || !strings.Contains(err.Error(), "unreadable image") {
		t.Fatalf("got %v, want the failing example named", err)
	}
	if n := settledGoroutines(base); n > base {
		t.Errorf("after a data error: %d goroutines, %d before Run", n, base)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.OutDir = t.TempDir()
	o.OnStep = func(m StepMetrics) {
		if m.Step == 2 {
			cancel()
		}
	}
	ds.failAt = -1
	if _, err := Run(ctx, o, ds, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n := settledGoroutines(base); n > base {
		t.Errorf("after cancel: %d goroutines, %d before Run", n, base)
	}
}

// TestRecordSavedWithEveryCheckpoint: Options.Record is in every checkpoint a Run writes, and
// a resumed Run replaces it with its own (a longer record here) in the checkpoints it writes.
func TestRecordSavedWithEveryCheckpoint(t *testing.T) {
	dir := t.TempDir()
	o := standInOptions(dir)
	o.Steps, o.CheckpointEvery, o.EvalEvery, o.KeepCheckpoints = 2, 1, 0, 10
	o.Record = []byte(`{"lr":0.003}`)
	ds := NewSynthetic(o.Config, 16, 1)
	if _, err := Run(context.Background(), o, ds, nil, nil); err != nil {
		t.Fatal(err)
	}
	o.Steps, o.Resume, o.Record = 3, true, []byte(`{"lr":0.003,"resumed":true}`)
	if _, err := Run(context.Background(), o, ds, nil, nil); err != nil {
		t.Fatal(err)
	}
	for step, want := range map[int]string{1: `{"lr":0.003}`, 2: `{"lr":0.003}`, 3: `{"lr":0.003,"resumed":true}`} {
		got, err := models.ReadCheckpointOptions(filepath.Join(dir, CheckpointName(step)))
		if err != nil || string(got) != want {
			t.Errorf("checkpoint %d: record %q, %v; want %q", step, got, err, want)
		}
	}
}
