package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artnet/artnet/internal/cpustat"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

// Load benchmarks: a Go load generator on loopback against a real Server.
//
//	go test ./server -run '^$' -bench 'Serve|ORT' -benchtime 400x
//
// ARTNET_BENCH_MODEL=model.onnx benchmarks that model instead of runtimetest's tiny one;
// ARTNET_BENCH_IMAGE=file picks the uploaded image (default: The Starry Night, 752×600 JPEG);
// ARTNET_BENCH_THREADS sets ORT's intra-op threads (default: ORT's); ARTNET_BENCH_DRAFT=1
// serves with Config.JPEGDraft; ARTNET_BENCH_NOSPIN=1 opens the model with runtime's NoSpin;
// ARTNET_BENCH_WORKERS=w serves with Config.Workers = w and runs the ceiling's batches w at a
// time (with ARTNET_BENCH_THREADS=1 on 2 cores: two single-threaded runs side by side);
// ARTNET_BENCH_SLOW=k adds
// to the tiny model a chain of k 512×512 matrix products per run (a fixed cost per run, as on
// an accelerator, where batching pays most).

func benchModel(b *testing.B) predict.Predictor {
	b.Helper()
	threads, _ := strconv.Atoi(os.Getenv("ARTNET_BENCH_THREADS"))
	if p := os.Getenv("ARTNET_BENCH_MODEL"); p != "" {
		m, err := onnxrt.Open(p, onnxrt.Options{IntraOpThreads: threads, NoSpin: os.Getenv("ARTNET_BENCH_NOSPIN") == "1"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	}
	if slow, _ := strconv.Atoi(os.Getenv("ARTNET_BENCH_SLOW")); slow > 0 {
		m, err := onnxrt.OpenBytes("slow.onnx", runtimetest.Model{Config: spec.Tiny(), SlowMatMuls: slow}.Bytes(), onnxrt.Options{IntraOpThreads: threads})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	}
	return tinyModel(b)
}

// load sends n requests from conc goroutines (each with its own keep-alive connection) and
// returns the latencies and how many answers were not 200.
func load(url string, body []byte, n, conc int) (lat []time.Duration, failed int64, firstErr error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var next atomic.Int64
	var bad atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	lat = make([]time.Duration, 0, n)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/conc+1)
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				resp, err := client.Post(url, "image/jpeg", bytes.NewReader(body))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					bad.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, bad.Load(), firstErr
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// BenchmarkServe measures throughput and latency of POST /v1/predict at concurrency 1, 8 and
// 64 with Batch 1 and Batch 32 (MaxDelay 5 ms). b.N is the total request count.
func BenchmarkServe(b *testing.B) {
	m := benchModel(b)
	body := testenv.BenchImage(b)
	for _, batch := range []int{1, 32} {
		for _, conc := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("batch=%d/conc=%d", batch, conc), func(b *testing.B) {
				cfg := Config{Batch: batch, MaxDelay: 5 * time.Millisecond, Queue: 256, MaxBodyBytes: 8 << 20,
					JPEGDraft: benchDraft(), Workers: benchWorkers()}
				r := serve(b, cfg, m, nil)
				url := r.url + "/v1/predict"
				if lat, bad, err := load(url, body, 2*conc, conc); bad > 0 { // warm-up
					b.Fatalf("warm-up: %d failed: %v (%d ok)", bad, err, len(lat))
				}
				runs0, images0 := batchCounts(r.s)
				b.ResetTimer()
				start, cpu0 := time.Now(), cpustat.Process()
				lat, bad, err := load(url, body, b.N, conc)
				el, cpuMs := time.Since(start), cpustat.MillisPer(cpu0, b.N)
				b.StopTimer()
				if bad > 0 {
					b.Fatalf("%d of %d requests failed: %v", bad, b.N, err)
				}
				runs, images := batchCounts(r.s)
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
				// Process CPU per request, the load generator's HTTP client included.
				b.ReportMetric(cpuMs, "cpu-ms/req")
				b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
				if runs > runs0 {
					b.ReportMetric((images-images0)/(runs-runs0), "imgs/run")
				}
			})
		}
	}
}

// batchCounts reads the batch-size histogram: model runs and images so far.
func batchCounts(s *Server) (runs, images float64) {
	mfs, err := s.met.reg.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() == "artnet_batch_size" {
			h := mf.GetMetric()[0].GetHistogram()
			return float64(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	return 0, 0
}

// benchDraft is ARTNET_BENCH_DRAFT=1: decode JPEGs as served with Config.JPEGDraft.
func benchDraft() bool { return os.Getenv("ARTNET_BENCH_DRAFT") == "1" }

// benchWorkers is ARTNET_BENCH_WORKERS (default 1).
func benchWorkers() int {
	if w, _ := strconv.Atoi(os.Getenv("ARTNET_BENCH_WORKERS")); w > 1 {
		return w
	}
	return 1
}

// BenchmarkORTBatch32 is the ceiling: in-process model runs of batch 32 on preprocessed
// tensors (no HTTP, no decoding), benchWorkers() of them at a time. b.N is the number of runs.
// Reports images/s.
func BenchmarkORTBatch32(b *testing.B) {
	m := benchModel(b)
	cfg := m.Config()
	opts := preprocess.FromConfig(cfg)
	x, err := preprocess.Decode(bytes.NewReader(testenv.BenchImage(b)), opts)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 32
	in := make([]float32, 0, batch*len(x))
	for i := 0; i < batch; i++ {
		in = append(in, x...)
	}
	ctx := context.Background()
	if _, err := m.Run(ctx, in, batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpustat.Process()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, benchWorkers())
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) && errs[w] == nil {
				_, errs[w] = m.Run(ctx, in, batch)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "img/s")
	b.ReportMetric(cpustat.MillisPer(cpu0, b.N*batch), "cpu-ms/img")
}

// BenchmarkDecodePreprocess is the per-request CPU cost outside the model: decode the upload
// and make its tensor (what each request goroutine does; ARTNET_BENCH_DRAFT=1 as served with
// Config.JPEGDraft). Besides wall time it reports process CPU time per image (cpu-ms/op).
func BenchmarkDecodePreprocess(b *testing.B) {
	m := benchModel(b)
	opts := preprocess.FromConfig(m.Config())
	opts.Draft = benchDraft()
	body := testenv.BenchImage(b)
	dst := make([]float32, opts.Len())
	b.ReportAllocs()
	cpu0 := cpustat.Process()
	for b.Loop() {
		img, err := preprocess.DecodeImage(bytes.NewReader(body), opts)
		if err != nil {
			b.Fatal(err)
		}
		preprocess.ToTensorInto(dst, img, opts)
	}
	b.ReportMetric(cpustat.MillisPer(cpu0, b.N), "cpu-ms/op")
}

// TestSoak (ARTNET_SOAK=N, N ≥ 10000) sends N requests at concurrency 16 to a server with a
// small queue: every answer must be 200 or 503, and the heap after warm-up must not grow.
func TestSoak(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ARTNET_SOAK"))
	if n == 0 {
		t.Skip("set ARTNET_SOAK=10000 to run the soak test")
	}
	if n < 10000 {
		t.Fatalf("ARTNET_SOAK=%d: want at least 10000", n)
	}
	m := tinyModel(t)
	cfg := testConfig()
	cfg.Batch, cfg.Queue, cfg.MaxDelay = 8, 12, 2*time.Millisecond
	r := serve(t, cfg, m, nil)
	url := r.url + "/v1/predict?topk=3"
	bodies := [][]byte{pngBytes(t, picture(96, 80, 1)), jpegBytes(t, picture(120, 90, 2))}
	const conc = 16
	tr := &http.Transport{MaxIdleConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var ok, busy, other atomic.Int64
	var firstErr atomic.Value
	send := func(count int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= int64(count); i = next.Add(1) {
					resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(bodies[i%2]))
					if err != nil {
						other.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusOK:
						ok.Add(1)
					case http.StatusServiceUnavailable:
						busy.Add(1)
					default:
						other.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
					}
				}
			}()
		}
		wg.Wait()
	}
	heap := func() uint64 {
		goruntime.GC()
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	const warm = 1000
	send(warm)
	base := heap()
	start := time.Now()
	var samples []uint64
	const chunks = 5
	for c := 0; c < chunks; c++ {
		send(n / chunks)
		samples = append(samples, heap())
	}
	el := time.Since(start)
	t.Logf("soak: %d requests after %d warm-up ones (all: %d ok, %d 503, %d other) in %v; heap after warm-up %.1f MiB, then %v MiB",
		ok.Load()+busy.Load()+other.Load()-warm, warm, ok.Load(), busy.Load(), other.Load(), el.Round(time.Millisecond), mibf(base), mibs(samples))
	if other.Load() > 0 {
		t.Errorf("%d answers neither 200 nor 503, first: %v", other.Load(), firstErr.Load())
	}
	if ok.Load() < int64(n)/2 {
		t.Errorf("only %d of %d requests succeeded", ok.Load(), n)
	}
	// No growth: the last sample is within 25% + 4 MiB of the post-warm-up heap.
	if last := samples[len(samples)-1]; float64(last) > 1.25*float64(base)+4<<20 {
		t.Errorf("heap grew from %.1f MiB to %.1f MiB", mibf(base), mibf(last))
	}
}

func mibf(v uint64) float64 { return float64(v) / (1 << 20) }

func mibs(v []uint64) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.FormatFloat(mibf(x), 'f', 1, 64)
	}
	return out
}
