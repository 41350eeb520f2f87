package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artnet/artnet/internal/cpustat"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// BenchmarkProtocols compares KServe v2 over gRPC with v2 over HTTP on one Server (same model,
// Config.Batch 8, same tensors — batch-1 FP32 requests — and the same concurrency): HTTP with
// JSON data, HTTP with the binary data extension, gRPC with raw_input_contents and with
// fp32_contents. b.N is the request count; req/s, p50-ms and p99-ms are reported.
//
//	go test ./server -run '^$' -bench Protocols -benchtime 400x
func BenchmarkProtocols(b *testing.B) {
	m := benchModel(b)
	size := m.Config().ImageSize
	img := runtimetest.Images(1, size, 3)
	jsonBody, err := jsonInfer(img, size)
	if err != nil {
		b.Fatal(err)
	}
	raw := rawFloats(img)
	hdr := fmt.Sprintf(`{"inputs":[{"name":"image","datatype":"FP32","shape":[1,3,%d,%d],"parameters":{"binary_data_size":%d}}]}`, size, size, len(raw))
	binBody := append([]byte(hdr), raw...)
	for _, conc := range []int{1, 16} {
		for _, proto := range []string{"http-json", "http-binary", "grpc-raw", "grpc-typed"} {
			b.Run(fmt.Sprintf("conc=%d/%s", conc, proto), func(b *testing.B) {
				cfg := Config{Batch: 8, MaxDelay: 2 * time.Millisecond, Queue: 256, MaxBodyBytes: 16 << 20, Workers: benchWorkers()}
				srv := serveBoth(b, cfg, m, nil, nil)
				var send func() error
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: 60 * time.Second}
				post := func(body []byte, hlen int) error {
					req, err := http.NewRequest(http.MethodPost, srv.url+"/v2/models/artnet/infer", bytes.NewReader(body))
					if err != nil {
						return err
					}
					if hlen > 0 {
						req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(hlen))
					}
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					var out InferResponse
					if resp.StatusCode != 200 {
						return fmt.Errorf("status %d", resp.StatusCode)
					}
					return jsonDecode(resp.Body, &out)
				}
				switch proto {
				case "http-json":
					send = func() error { return post(jsonBody, 0) }
				case "http-binary":
					send = func() error { return post(binBody, len(hdr)) }
				case "grpc-raw", "grpc-typed":
					req := tensorRequest(img, 1, size, proto == "grpc-raw")
					send = func() error {
						_, err := srv.client.ModelInfer(context.Background(), req)
						return err
					}
				}
				if _, err := drive(send, 2*conc, conc); err != nil { // warm-up
					b.Fatal(err)
				}
				b.ResetTimer()
				start, cpu0 := time.Now(), cpustat.Process()
				lat, err := drive(send, b.N, conc)
				el, cpuMs := time.Since(start), cpustat.MillisPer(cpu0, b.N)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
				b.ReportMetric(cpuMs, "cpu-ms/req")
				b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			})
		}
	}
}

// jsonInfer is a v2 JSON infer body for one image.
func jsonInfer(img []float32, size int) ([]byte, error) {
	return json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "FP32", "shape": []int{1, 3, size, size}, "data": img}}})
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// drive calls send n times from conc goroutines and returns the latencies; the first error
// stops it.
func drive(send func() error, n, conc int) ([]time.Duration, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	lat := make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				err := send()
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, firstErr
}
