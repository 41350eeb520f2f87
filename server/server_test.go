package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

const fixtures = "../testdata/images"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func multipartBody(t testing.TB, field, filename string, data []byte) (ctype string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), b.Bytes()
}

func TestPredict(t *testing.T) {
	m := tinyModel(t)
	r := serve(t, testConfig(), m, nil)
	pngData := pngBytes(t, picture(90, 70, 1))
	jpgData := jpegBytes(t, picture(70, 100, 2))

	var got PredictResponse
	resp, body := post(t, r.url+"/v1/predict?topk=3", "image/png", pngData, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("raw PNG: %d %s", resp.StatusCode, body)
	}
	if err := samePrediction(got.Prediction, expected(t, m, pngData, "upload", 3), 1e-5); err != nil {
		t.Errorf("raw PNG: %v", err)
	}
	if got.Style.TopK == nil || len(got.Style.TopK) != 3 || got.Attention != nil || got.AttentionPNG != "" {
		t.Errorf("raw PNG: want 3 top-k and no attention, got %s", body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id header")
	}
	// A client's own request id is kept when it is short and plain, replaced otherwise.
	for id, keep := range map[string]bool{"client-42.a_b": true, "bad id\u00e9": false, strings.Repeat("x", 65): false} {
		req, _ := http.NewRequest(http.MethodGet, r.url+"/v2/health/live", nil)
		req.Header.Set("X-Request-Id", id)
		resp, _ := do(t, req, nil)
		if got := resp.Header.Get("X-Request-Id"); (got == id) != keep || got == "" {
			t.Errorf("request id %q answered as %q (keep %v)", id, got, keep)
		}
	}

	ct, mp := multipartBody(t, "image", "dir/painting.jpg", jpgData)
	got = PredictResponse{}
	resp, body = post(t, r.url+"/v1/predict", ct, mp, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("multipart JPEG: %d %s", resp.StatusCode, body)
	}
	if err := samePrediction(got.Prediction, expected(t, m, jpgData, "painting.jpg", DefaultTopK), 1e-5); err != nil {
		t.Errorf("multipart JPEG: %v", err)
	}

	// The two images must give different answers, or the comparisons above prove little.
	if a, b := expected(t, m, pngData, "x", 27), expected(t, m, jpgData, "x", 27); samePrediction(a, b, 1e-3) == nil {
		t.Errorf("test images give the same prediction")
	}
}

func TestAttention(t *testing.T) {
	m := tinyModel(t)
	r := serve(t, testConfig(), m, nil)
	data := pngBytes(t, picture(120, 80, 3))

	var got PredictResponse
	resp, body := post(t, r.url+"/v1/predict?attention=1", "image/png", data, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	cfg := m.Config()
	if len(got.Attention) != cfg.Tokens() || len(got.Grid) != 2 || got.Grid[0]*got.Grid[1] != cfg.Tokens() {
		t.Errorf("attention %d weights, grid %v; want %d tokens", len(got.Attention), got.Grid, cfg.Tokens())
	}
	pngb, err := base64.StdEncoding.DecodeString(got.AttentionPNG)
	if err != nil {
		t.Fatalf("attention_png: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(pngb))
	if err != nil {
		t.Fatalf("attention_png: %v", err)
	}
	if img.Bounds().Dx() != 120 || img.Bounds().Dy() != 80 {
		t.Errorf("overlay is %v, want the upload's 120×80", img.Bounds())
	}

	resp, body = post(t, r.url+"/v1/predict?attention=png", "image/png", data, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("attention=png: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, pngb) {
		t.Errorf("attention=png differs from the JSON's attention_png")
	}
}

// slowRequest writes head, waits, writes rest, and returns the answer's status line and body
// ("" if the server closed the connection without one).
func slowRequest(t *testing.T, addr, head string, pause time.Duration, rest string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	_, _ = io.WriteString(c, rest) // may fail: the server may have hung up
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

func TestBadRequests(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 64 << 10
	cfg.ReadHeaderTimeout = 300 * time.Millisecond
	cfg.ReadTimeout = 600 * time.Millisecond
	r := serve(t, cfg, m, nil)
	good := pngBytes(t, picture(80, 80, 4))
	corrupt := bytes.Clone(good)
	for i := 60; i < 80 && i < len(corrupt); i++ { // inside the first chunk after IHDR
		corrupt[i] ^= 0x5a
	}
	ctNoImage, bodyNoImage := multipartBody(t, "file", "x.png", good)
	big := bytes.Repeat([]byte{0xff, 0xd8, 0xff}, 40<<10) // 120 KiB > 64 KiB

	cases := []struct {
		name, method, path, ctype string
		body                      []byte
		chunked                   bool
		code                      int
		msg                       string
	}{
		{"empty body", "POST", "/v1/predict", "image/jpeg", nil, false, 400, "empty"},
		{"wrong content type", "POST", "/v1/predict", "text/plain", good, false, 415, "content type"},
		{"json to predict", "POST", "/v1/predict", "application/json", []byte(`{}`), false, 415, "content type"},
		{"bad content type syntax", "POST", "/v1/predict", "image/png; =x", good, false, 415, "content type"},
		{"not an image", "POST", "/v1/predict", "image/png", []byte("hello, this is text"), false, 415, "unknown image format"},
		{"truncated JPEG", "POST", "/v1/predict", "image/jpeg", fixture(t, "bad-truncated.jpg"), false, 422, "truncated"},
		{"corrupt PNG", "POST", "/v1/predict", "image/png", corrupt, false, 422, "corrupt"},
		{"decompression bomb", "POST", "/v1/predict", "image/png", fixture(t, "bad-huge.png"), false, 413, "pixels"},
		{"too small", "POST", "/v1/predict", "image/png", fixture(t, "bad-1x1.png"), false, 422, "too small"},
		{"oversized body", "POST", "/v1/predict", "image/jpeg", big, false, 413, "limit"},
		{"oversized chunked body", "POST", "/v1/predict", "image/jpeg", big, true, 413, "limit"},
		{"multipart without image", "POST", "/v1/predict", ctNoImage, bodyNoImage, false, 400, `no field "image"`},
		{"multipart without boundary", "POST", "/v1/predict", "multipart/form-data", good, false, 400, "boundary"},
		{"bad topk", "POST", "/v1/predict?topk=0", "image/png", good, false, 400, "topk"},
		{"bad attention", "POST", "/v1/predict?attention=yes", "image/png", good, false, 400, "attention"},
		{"GET predict", "GET", "/v1/predict", "", nil, false, 405, "not allowed"},
		{"unknown route", "GET", "/v1/nothing", "", nil, false, 404, "no route"},
	}
	checkGood := func(after string) {
		t.Helper()
		var got PredictResponse
		resp, body := post(t, r.url+"/v1/predict", "image/png", good, &got)
		if resp.StatusCode != http.StatusOK || got.Prediction == nil || got.Style == nil {
			t.Fatalf("good request after %q: %d %s", after, resp.StatusCode, body)
		}
	}
	for _, c := range cases {
		var rd io.Reader = bytes.NewReader(c.body)
		if c.chunked {
			rd = io.MultiReader(rd) // hides the length: chunked encoding
		}
		req, err := http.NewRequest(c.method, r.url+c.path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, body := do(t, req, nil)
		if resp.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.code, body)
		}
		if msg := jsonError(t, resp, body); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: error %q does not mention %q", c.name, msg, c.msg)
		}
		checkGood(c.name)
	}

	addr := strings.TrimPrefix(r.url, "http://")
	// A client that stalls in the headers: net/http hangs up after ReadHeaderTimeout without
	// an answer (it never reaches a handler).
	start := time.Now()
	if ans := slowRequest(t, addr, "POST /v1/predict HTTP/1.1\r\nHost: x\r\n", 1200*time.Millisecond, "Content-Length: 0\r\n\r\n"); ans != "" {
		t.Errorf("slow headers: got an answer %.100q, want the connection closed", ans)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("slow headers: connection held %v", d)
	}
	checkGood("slow headers")
	// A client that stalls in the body: 408 JSON.
	head := fmt.Sprintf("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(good))
	ans := slowRequest(t, addr, head+string(good[:20]), 1200*time.Millisecond, string(good[20:]))
	if !strings.HasPrefix(ans, "HTTP/1.1 408") || !strings.Contains(ans, `{"error":"reading the request body timed out"}`) {
		t.Errorf("slow body: answer %.300q, want 408 with a JSON error", ans)
	}
	checkGood("slow body")
}

// N concurrent requests with Batch 8: fewer model runs than requests, each caller gets its own
// image's result. The first run is held until every other request is queued, so the batches
// are deterministic: 1, 8, 8.
func TestBatching(t *testing.T) {
	m := tinyModel(t)
	g := newGated(m, true)
	cfg := testConfig()
	cfg.Batch = 8
	cfg.MaxDelay = time.Second
	r := serve(t, cfg, g, nil)
	const n = 17
	datas := make([][]byte, n)
	want := make([]*predict.Prediction, n)
	for i := range datas {
		datas[i] = pngBytes(t, picture(64+i, 72, 10+i))
		want[i] = expected(t, m, datas[i], fmt.Sprintf("img%02d.png", i), 27)
		for j := 0; j < i; j++ {
			if samePrediction(want[i], withImage(want[j], want[i].Image), 1e-4) == nil {
				t.Fatalf("images %d and %d give the same prediction", i, j)
			}
		}
	}
	got := make([]PredictResponse, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	cts, bodies := make([]string, n), make([][]byte, n)
	for i := range datas {
		cts[i], bodies[i] = multipartBody(t, "image", fmt.Sprintf("img%02d.png", i), datas[i])
	}
	send := func(i int) {
		defer wg.Done()
		resp, b := post(t, r.url+"/v1/predict?topk=27", cts[i], bodies[i], &got[i])
		codes[i] = resp.StatusCode
		if resp.StatusCode != http.StatusOK {
			t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	wg.Add(1)
	go send(0)
	if size := <-g.entered; size != 1 {
		t.Fatalf("first run has %d images, want 1", size)
	}
	for i := 1; i < n; i++ {
		wg.Add(1)
		go send(i)
	}
	waitFor(t, "16 queued requests", func() bool { return r.s.b.pending.Load() == n-1 && len(r.s.b.ch) == n-1 })
	close(g.release)
	wg.Wait()
	sizes, images := g.runs()
	if len(sizes) != 3 || images != n {
		t.Errorf("runs %v (%d images), want [1 8 8]", sizes, images)
	}
	for i := range got {
		if codes[i] == http.StatusOK {
			if err := samePrediction(got[i].Prediction, want[i], 1e-5); err != nil {
				t.Errorf("request %d got another image's result: %v", i, err)
			}
		}
	}
}

func withImage(p *predict.Prediction, name string) *predict.Prediction {
	c := *p
	c.Image = name
	return &c
}

func TestQueueFull(t *testing.T) {
	m := tinyModel(t)
	g := newGated(m, true)
	cfg := testConfig()
	cfg.Batch, cfg.Queue = 1, 2
	r := serve(t, cfg, g, nil)
	data := pngBytes(t, picture(64, 64, 5))
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, r.url+"/v1/predict", "image/png", data, nil)
			codes <- resp.StatusCode
		}()
		if i == 0 {
			<-g.entered // the first is in the (blocked) model run
		}
	}
	waitFor(t, "2 queued requests", func() bool { return r.s.b.pending.Load() == 2 })
	resp, body := post(t, r.url+"/v1/predict", "image/png", data, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("full queue: %d, Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if msg := jsonError(t, resp, body); !strings.Contains(msg, "queue full") {
		t.Errorf("full queue: error %q", msg)
	}
	if err := r.s.b.admit(); !errors.Is(err, ErrQueueFull) {
		t.Errorf("admit on a full queue: %v, want ErrQueueFull", err)
	}
	close(g.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("queued request: %d, want 200", c)
		}
	}
	if p := r.s.b.pending.Load(); p != 0 {
		t.Errorf("pending %d after all requests, want 0", p)
	}
}

// A queued request whose client goes away is not run.
func TestClientGoneNotRun(t *testing.T) {
	m := tinyModel(t)
	g := newGated(m, true)
	cfg := testConfig()
	cfg.Batch = 1
	r := serve(t, cfg, g, nil)
	data := pngBytes(t, picture(64, 64, 6))
	done := make(chan int, 1)
	go func() {
		resp, _ := post(t, r.url+"/v1/predict", "image/png", data, nil)
		done <- resp.StatusCode
	}()
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/v1/predict", bytes.NewReader(data))
		req.Header.Set("Content-Type", "image/png")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	waitFor(t, "the second request queued", func() bool { return len(r.s.b.ch) == 1 })
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled client: %v", err)
	}
	waitFor(t, "the server to see the client gone", func() bool {
		return strings.Contains(metricsText(t, r.url), `artnet_http_requests_total{code="499",route="/v1/predict"} 1`)
	})
	close(g.release)
	if c := <-done; c != http.StatusOK {
		t.Errorf("first request: %d", c)
	}
	waitFor(t, "the batcher to drop the request", func() bool {
		return strings.Contains(metricsText(t, r.url), "artnet_requests_dropped_total 1")
	})
	if sizes, images := g.runs(); len(sizes) != 1 || images != 1 {
		t.Errorf("runs %v: the gone client's image was run", sizes)
	}
}

func metricsText(t testing.TB, url string) string {
	t.Helper()
	resp, body := get(t, url+"/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return string(body)
}

// Shutdown lets the in-flight request finish, then Serve returns and no goroutine is left.
func TestGracefulShutdown(t *testing.T) {
	m := tinyModel(t)
	before := goruntime.NumGoroutine()
	g := newGated(m, true)
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := serve(t, testConfig(), g, log)
	data := pngBytes(t, picture(64, 64, 7))
	type answer struct {
		code int
		body []byte
	}
	done := make(chan answer, 1)
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	go func() {
		resp, err := client.Post(r.url+"/v1/predict", "image/png", bytes.NewReader(data))
		if err != nil {
			done <- answer{0, []byte(err.Error())}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- answer{resp.StatusCode, b}
	}()
	<-g.entered
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	waitFor(t, "not ready", func() bool { return !r.s.ready.Load() })
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	a := <-done
	if a.code != http.StatusOK {
		t.Errorf("in-flight request: %d %s", a.code, a.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Get(r.url + "/v2/health/live"); err == nil {
		t.Errorf("server still answers after Serve returned")
	}
	tr.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	testClient.CloseIdleConnections()
	waitFor(t, "goroutines to end", func() bool { return goruntime.NumGoroutine() <= before })
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), `"request_id":`) || !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("logs lack request ids or the stop message:\n%s", logs.String())
	}
}

// When in-flight requests outlast ShutdownTimeout, Serve cancels the model runs, closes the
// connections and says so.
func TestShutdownTimeout(t *testing.T) {
	m := tinyModel(t)
	g := newGated(m, true) // never released: the run ends only by cancellation
	cfg := testConfig()
	cfg.ShutdownTimeout = 200 * time.Millisecond
	r := serve(t, cfg, g, nil)
	data := pngBytes(t, picture(64, 64, 9))
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(r.url+"/v1/predict", "image/png", bytes.NewReader(data))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				err = fmt.Errorf("got an answer: %d", resp.StatusCode)
			}
		}
		done <- err
	}()
	<-g.entered
	start := time.Now()
	err := r.stop()
	if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Errorf("Serve: %v, want a shutdown timeout error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Serve took %v to return", d)
	}
	if err := <-done; err != nil && strings.Contains(err.Error(), "got an answer") {
		t.Errorf("client: %v, want the connection closed or 503", err)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestMetrics(t *testing.T) {
	m := tinyModel(t)
	r := serve(t, testConfig(), m, nil)
	data := pngBytes(t, picture(64, 64, 8))
	for i := 0; i < 3; i++ {
		if resp, body := post(t, r.url+"/v1/predict", "image/png", data, nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	post(t, r.url+"/v1/predict", "text/plain", data, nil)
	text := metricsText(t, r.url)
	for _, want := range []string{
		`artnet_http_requests_total{code="200",route="/v1/predict"} 3`,
		`artnet_http_requests_total{code="415",route="/v1/predict"} 1`,
		`artnet_http_request_duration_seconds_count{route="/v1/predict"} 4`,
		`artnet_batch_size_count 3`,
		`artnet_batch_size_sum 3`,
		`artnet_model_run_seconds_count 3`,
		`artnet_queue_depth 0`,
		`artnet_requests_dropped_total 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A second server has its own registry.
	r2 := serve(t, testConfig(), m, nil)
	if text := metricsText(t, r2.url); strings.Contains(text, `route="/v1/predict"`) {
		t.Errorf("a new server's metrics show the other server's requests")
	}
}

func TestIndexAndHealth(t *testing.T) {
	m := tinyModel(t)
	r := serve(t, testConfig(), m, nil)
	resp, body := get(t, r.url+"/", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("v1/predict")) {
		t.Errorf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/artnet/ready", "/v2"} {
		if resp, body := get(t, r.url+p, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
	}
	resp, body = post(t, r.url+"/v2/health/live", "", nil, nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Errorf("POST live: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	jsonError(t, resp, body)
}

func TestNewErrors(t *testing.T) {
	m := tinyModel(t)
	if _, err := New(Config{Batch: -1}, m, nil); err == nil || !strings.Contains(err.Error(), "Batch") {
		t.Errorf("negative batch: %v", err)
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Errorf("nil model accepted")
	}
	s, err := New(Config{}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Config(); c.Batch != DefaultBatch || c.Queue != DefaultQueueFactor*DefaultBatch || c.MaxDelay != DefaultMaxDelay {
		t.Errorf("defaults: %+v", c)
	}
}

// Without any gating: two workers, small batches, many concurrent clients; every caller still
// gets its own image's result. A lone request does not wait for MaxDelay (an hour here): the
// batcher runs as soon as no other admitted request is on its way.
func TestConcurrentOwnResults(t *testing.T) {
	m := tinyModel(t)
	g := newGated(m, false)
	cfg := testConfig()
	cfg.Batch, cfg.Workers, cfg.MaxDelay = 4, 2, time.Hour
	r := serve(t, cfg, g, nil)

	lone := pngBytes(t, picture(64, 64, 99))
	if resp, body := post(t, r.url+"/v1/predict", "image/png", lone, nil); resp.StatusCode != 200 {
		t.Fatalf("lone request: %d %s", resp.StatusCode, body)
	}

	const n = 24
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		data := jpegBytes(t, picture(70+i, 66, 200+i))
		name := fmt.Sprintf("c%02d.jpg", i)
		want := expected(t, m, data, name, 4)
		ct, body := multipartBody(t, "image", name, data)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got PredictResponse
			resp, b := post(t, r.url+"/v1/predict?topk=4", ct, body, &got)
			if resp.StatusCode != 200 {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
				return
			}
			if err := samePrediction(got.Prediction, want, 1e-5); err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	sizes, images := g.runs()
	t.Logf("%d requests in %d runs: %v", n+1, len(sizes), sizes)
	if images != n+1 {
		t.Errorf("%d images run, want %d", images, n+1)
	}
	for _, s := range sizes {
		if s > cfg.Batch {
			t.Errorf("a run of %d images, more than Batch %d", s, cfg.Batch)
		}
	}
}

// A worker holding a batch open for a request that is still being read must be woken when
// that request fails: with MaxDelay an hour, the queued request is answered anyway.
func TestWakeWhenDecodingFails(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxDelay = time.Hour
	r := serve(t, cfg, m, nil)
	// B: on its way, stuck reading its body (no queue slot).
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n\x89PNG"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B arriving", func() bool { return r.s.b.decoding.Load() == 1 })
	// A: queued and taken by the worker, which waits since B is on its way.
	data := pngBytes(t, picture(64, 64, 11))
	done := make(chan int, 1)
	go func() {
		resp, _ := post(t, r.url+"/v1/predict", "image/png", data, nil)
		done <- resp.StatusCode
	}()
	waitFor(t, "A taken by the worker", func() bool {
		return r.s.b.pending.Load() == 0 && len(r.s.b.ch) == 0 && r.s.b.decoding.Load() == 1 && len(r.s.bodySlots) == 1
	})
	select {
	case code := <-done:
		t.Fatalf("A answered (%d) while B was still being read: the worker did not wait", code)
	case <-time.After(50 * time.Millisecond):
	}
	c.Close() // B fails
	if code := <-done; code != http.StatusOK {
		t.Errorf("A: %d, want 200", code)
	}
}

// TestJPEGDraft: with Config.JPEGDraft a large JPEG is decoded at a DCT scale — the answer is
// the model's on preprocess's drafted tensor, which differs from the full-size one.
func TestJPEGDraft(t *testing.T) {
	if os.Getenv("ARTNET_JPEG") == "go" {
		t.Skip("ARTNET_JPEG=go: image/jpeg cannot draft")
	}
	if !strings.HasPrefix(preprocess.JPEGDecoder(), "libjpeg-turbo") {
		testenv.Missing(t, "libjpeg-turbo (image/jpeg cannot draft)", "apt-get install libturbojpeg0")
	}
	m := tinyModel(t)
	cfg := testConfig()
	cfg.JPEGDraft = true
	r := serve(t, cfg, m, nil)
	data := jpegBytes(t, picture(300, 240, 3)) // shorter side 240 ≥ 2 × the tiny model's resize 72
	want := func(draft bool) *predict.Prediction {
		o := preprocess.FromConfig(m.Config())
		o.Draft = draft
		return expectedWith(t, m, data, "upload", 27, o)
	}
	if samePrediction(want(true), want(false), 1e-5) == nil {
		t.Fatal("drafted and full-size decoding give the same prediction: the test proves nothing")
	}
	var got PredictResponse
	resp, body := post(t, r.url+"/v1/predict?topk=27", "image/jpeg", data, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := samePrediction(got.Prediction, want(true), 2e-6); err != nil {
		t.Errorf("served with JPEGDraft: %v", err)
	}
}
