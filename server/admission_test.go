package server

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image/png"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/preprocess"
)

// bombPNG is a w×h 16-bit RGBA PNG of zeros: a few hundred KB that decode to w·h·8 bytes.
func bombPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		out.Write(n[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.BigEndian.PutUint32(n[:], c.Sum32())
		out.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, 6 // 16 bits, RGBA
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	row := make([]byte, 1+8*w) // filter 0 and zeros
	for y := 0; y < h; y++ {
		if _, err := zw.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

// rawRequest opens a connection and sends head (request line and headers) and body, then
// leaves it open; the caller reads the answer with readAnswer.
func rawRequest(t testing.TB, addr, head, body string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head+body); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads one HTTP answer from c within d; status 0 when none came.
func readAnswer(c net.Conn, d time.Duration) (int, string) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func addrOf(r *running) string { return strings.TrimPrefix(r.url, "http://") }

// A body slower than MinBodyRate is cut off with 408 after the grace period; meanwhile it
// holds no model-queue slot, and normal requests (Queue 1) are answered.
func TestSlowBodyCutOff(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.Queue, cfg.Batch = 1, 1
	cfg.MinBodyRate, cfg.MinBodyRateGrace = 1000, 300*time.Millisecond
	r := serve(t, cfg, m, nil)
	var slow []net.Conn
	for i := 0; i < 8; i++ {
		slow = append(slow, rawRequest(t, addrOf(r), "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 200000\r\n\r\n", "\x89PNG"))
	}
	waitFor(t, "8 bodies being read", func() bool { return len(r.s.bodySlots) == 8 })
	if p := r.s.b.pending.Load(); p != 0 {
		t.Errorf("slow uploads hold %d queue slots", p)
	}
	if u := r.s.mem.inUse(); u > 8*64<<10 { // what they sent, in 64 KiB steps, not the 100 KB each declares
		t.Errorf("slow uploads reserve %d bytes", u)
	}
	data := pngBytes(t, picture(64, 64, 1))
	for i := 0; i < 3; i++ {
		if resp, body := post(t, r.url+"/v1/predict", "image/png", data, nil); resp.StatusCode != 200 {
			t.Errorf("normal request during slow uploads: %d %s", resp.StatusCode, body)
		}
	}
	start := time.Now()
	for _, c := range slow {
		code, body := readAnswer(c, 5*time.Second)
		if code != http.StatusRequestTimeout || !strings.Contains(body, "bytes/s") {
			t.Errorf("slow upload: %d %s, want 408 naming the minimum rate", code, body)
		}
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("slow uploads cut after %v, want about the 300 ms grace", el)
	}
	waitFor(t, "body slots freed", func() bool { return len(r.s.bodySlots) == 0 })
	// A body that keeps up with the rate is not cut, however long it takes within ReadTimeout.
	c := rawRequest(t, addrOf(r), fmt.Sprintf("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", len(data)), "")
	for off := 0; off < len(data); off += 400 {
		_, _ = c.Write(data[off:min(off+400, len(data))])
		time.Sleep(100 * time.Millisecond) // 4000 bytes/s
		if off > 2000 {
			break
		}
	}
	_, _ = c.Write(data[min(2400, len(data)):])
	if code, body := readAnswer(c, 5*time.Second); code != 200 {
		t.Errorf("a body at 4× the minimum rate: %d %s", code, body)
	}
}

// With every body-read slot taken, a request waits AdmitWait and gets 503 with Retry-After,
// and readiness says why.
func TestBodyReadSlots(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.BodyReads, cfg.AdmitWait = 2, 100*time.Millisecond
	r := serve(t, cfg, m, nil)
	for i := 0; i < 2; i++ {
		rawRequest(t, addrOf(r), "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", "x")
	}
	waitFor(t, "2 bodies being read", func() bool { return len(r.s.bodySlots) == 2 })
	resp, body := post(t, r.url+"/v1/predict", "image/png", pngBytes(t, picture(64, 64, 1)), nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(jsonError(t, resp, body), "bodies being read") {
		t.Errorf("all slots taken: %d %q %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, body = get(t, r.url+"/v2/health/ready", nil)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "body-read slots") {
		t.Errorf("ready while saturated: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, r.url+"/v2/health/live", nil); resp.StatusCode != 200 {
		t.Errorf("live while saturated: %d", resp.StatusCode)
	}
}

// Decoding reserves its worst case from the header first: a decompression bomb larger than
// the whole budget is refused with 413 before it is decoded; with the budget in use, a
// request waits AdmitWait and gets 503 + Retry-After, readiness says so, and once memory is
// freed requests are answered again.
func TestMemoryBudgetDecode(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes, cfg.AdmitWait = 4<<20, 200*time.Millisecond
	r := serveSetup(t, cfg, m, nil, func(s *Server) { s.mem = newMemBudget(64 << 20) })
	bomb := bombPNG(t, 3000, 3000) // 72 MB as RGBA64 alone
	h, err := preprocess.DecodeConfig(bytes.NewReader(bomb), r.s.popt)
	if err != nil || h.BytesPerPixel != 8 {
		t.Fatalf("bomb header %+v, %v", h, err)
	}
	resp, body := post(t, r.url+"/v1/predict", "image/png", bomb, nil)
	if resp.StatusCode != 413 || !strings.Contains(jsonError(t, resp, body), "budget") {
		t.Errorf("bomb over the budget: %d %s, want 413 naming the budget", resp.StatusCode, body)
	}
	if _, peak := ProcessMemory(); peak > 0 && r.s.mem.inUse() != 0 {
		t.Errorf("%d bytes still reserved", r.s.mem.inUse())
	}
	// Hold nearly all of it.
	if err := r.s.mem.acquire(context.Background(), 64<<20-100<<10, 0); err != nil {
		t.Fatal(err)
	}
	data := pngBytes(t, picture(200, 200, 2))
	resp, body = post(t, r.url+"/v1/predict", "image/png", data, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(jsonError(t, resp, body), "memory budget") {
		t.Errorf("budget in use: %d %q %s, want 503 + Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := get(t, r.url+"/v2/health/ready", nil); resp.StatusCode != 503 || !strings.Contains(string(body), "memory") {
		t.Errorf("ready with the budget in use: %d %s", resp.StatusCode, body)
	}
	// A waiting request goes ahead as soon as memory is freed.
	done := make(chan int, 1)
	go func() { resp, _ := post(t, r.url+"/v1/predict", "image/png", data, nil); done <- resp.StatusCode }()
	time.Sleep(50 * time.Millisecond)
	r.s.mem.release(64<<20 - 100<<10)
	if code := <-done; code != 200 {
		t.Errorf("after the release: %d", code)
	}
	if resp, _ := get(t, r.url+"/v2/health/ready", nil); resp.StatusCode != 200 {
		t.Errorf("ready after the release: %d", resp.StatusCode)
	}
	waitFor(t, "reservations released", func() bool { return r.s.mem.inUse() == 0 })
}

// A small reservation is not held back by a larger one that waits (no head-of-line blocking).
func TestMemBudgetSmallPassesLarge(t *testing.T) {
	mb := newMemBudget(100)
	if err := mb.acquire(context.Background(), 60, 0); err != nil {
		t.Fatal(err)
	}
	big := make(chan error, 1)
	go func() { big <- mb.acquire(context.Background(), 80, time.Second) }()
	time.Sleep(10 * time.Millisecond)
	if err := mb.acquire(context.Background(), 30, 10*time.Millisecond); err != nil {
		t.Errorf("small reservation behind a waiting large one: %v", err)
	}
	mb.release(90)
	if err := <-big; err != nil {
		t.Errorf("large reservation after the release: %v", err)
	}
	if err := mb.acquire(context.Background(), 101, time.Second); err == nil || statusOf(err) != 413 {
		t.Errorf("more than the budget: %v, want a 413", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := mb.acquire(ctx, 50, time.Second); err == nil {
		t.Errorf("acquire with a cancelled context succeeded")
	}
}

// ?attention=png of an upload larger than MaxOverlaySide is drawn at the capped size, with
// the same aspect, and its memory is reserved and released.
func TestAttentionOverlayCapped(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 8 << 20
	cfg.WriteTimeout = time.Minute // decoding, scaling and encoding megapixels under -race on a loaded machine took > 10 s
	r := serve(t, cfg, m, nil)
	resp, body := post(t, r.url+"/v1/predict?attention=png", "image/png", pngBytes(t, picture(2000, 1500, 4)), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != MaxOverlaySide || b.Dy() != 768 {
		t.Errorf("overlay %v, want %d×768", b, MaxOverlaySide)
	}
	var got PredictResponse
	resp, body = post(t, r.url+"/v1/predict?attention=1", "image/png", pngBytes(t, picture(600, 1300, 4)), &got)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	pb, _ := base64.StdEncoding.DecodeString(got.AttentionPNG)
	cfgImg, err := png.DecodeConfig(bytes.NewReader(pb))
	if err != nil || cfgImg.Width != 472 || cfgImg.Height != MaxOverlaySide {
		t.Errorf("overlay %dx%d (%v), want 472×%d", cfgImg.Width, cfgImg.Height, err, MaxOverlaySide)
	}
	waitFor(t, "reservations released", func() bool { return r.s.mem.inUse() == 0 })
}

// The v2 stream parser answers as soon as the shape or the data go wrong, without reading
// the rest of the body: the client below sends only the beginning of a 30 MB body.
func TestV2StopsEarly(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 32 << 20
	r := serve(t, cfg, m, nil)
	size := spec.Tiny().ImageSize
	head := "POST /v2/models/artnet/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 30000000\r\n\r\n"
	for _, c := range []struct{ name, body, msg string }{
		{"batch too large", fmt.Sprintf(`{"inputs":[{"name":"image","datatype":"FP32","shape":[1000,3,%d,%d],"data":[0,`, size, size), "batch 1000"},
		{"wrong shape", `{"inputs":[{"name":"image","shape":[1,3,5,5],"data":[`, "shape"},
		{"too many values", fmt.Sprintf(`{"inputs":[{"name":"image","shape":[1,3,%d,%d],"data":[%s0,`, size, size, strings.Repeat("0.5,", 3*size*size)), "more than"},
		{"two inputs", fmt.Sprintf(`{"inputs":[{"name":"image","shape":[1,3,%d,%d],"data":[%s0]},{"name":"x","data":[`, size, size, strings.Repeat("0.5,", 3*size*size-1)), "exactly one input"},
		{"long token", `{"id":"` + strings.Repeat("a", 2<<20), "longer than"},
		{"deep nesting", `{"inputs":[{"name":"image","data":[[[[[[`, "nested deeper"},
		{"deep skipped value", `{"parameters":` + strings.Repeat("[", 100), "nested deeper"},
	} {
		conn := rawRequest(t, addrOf(r), head, c.body)
		code, body := readAnswer(conn, 5*time.Second)
		if code != 400 || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %.200s, want 400 mentioning %q", c.name, code, body, c.msg)
		}
	}
	waitFor(t, "reservations released", func() bool { return r.s.mem.inUse() == 0 })
}

// Data before the shape (any key order is valid JSON) is read up to the largest batch and
// checked against the shape afterwards; answers match the model's.
func TestV2DataBeforeShape(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 4 << 20
	r := serve(t, cfg, m, nil)
	size := spec.Tiny().ImageSize
	imgs := runtimetest.Images(2, size, 7)
	want, err := m.Run(context.Background(), imgs, 2)
	if err != nil {
		t.Fatal(err)
	}
	var d strings.Builder
	for i, v := range imgs {
		if i > 0 {
			d.WriteByte(',')
		}
		fmt.Fprintf(&d, "%g", v)
	}
	body := fmt.Sprintf(`{"outputs":[{"name":"genre","parameters":{"x":[1,{"y":null}]}}],"inputs":[{"data":[%s],"datatype":"FP32","parameters":{},"shape":[2,3,%d,%d],"name":"image"}],"id":"q"}`, d.String(), size, size)
	var resp InferResponse
	hr, b := post(t, r.url+"/v2/models/artnet/infer", "application/json", []byte(body), &resp)
	if hr.StatusCode != 200 {
		t.Fatalf("%d %s", hr.StatusCode, b)
	}
	if resp.ID != "q" || len(resp.Outputs) != 1 || resp.Outputs[0].Name != "genre" {
		t.Fatalf("response %+v", resp)
	}
	for i, v := range want.Probs["genre"] {
		if d := resp.Outputs[0].Data[i] - v; d > 1e-5 || d < -1e-5 {
			t.Fatalf("genre[%d] = %g, want %g", i, resp.Outputs[0].Data[i], v)
		}
	}
	// Shape after data that does not match the count.
	body = fmt.Sprintf(`{"inputs":[{"name":"image","datatype":"FP32","data":[%s],"shape":[3,3,%d,%d]}]}`, d.String(), size, size)
	if hr, b := post(t, r.url+"/v2/models/artnet/infer", "application/json", []byte(body), nil); hr.StatusCode != 400 || !strings.Contains(string(b), "needs") {
		t.Errorf("count mismatch: %d %s", hr.StatusCode, b)
	}
}

// v2 data are charged to the memory budget before they are read: a request larger than the
// whole budget gets 413, one that finds it in use 503.
func TestV2MemoryBudget(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes, cfg.AdmitWait = 4<<20, 100*time.Millisecond
	size := spec.Tiny().ImageSize
	per := int64(3*size*size) * 4
	r := serveSetup(t, cfg, m, nil, func(s *Server) { s.mem = newMemBudget(maxPendingJSON + 64<<10 + 2*per) })
	one := runtimetest.Images(1, size, 1)
	if hr, b := post(t, r.url+"/v2/models/artnet/infer", "application/json", inferBody(t, []int{1, 3, size, size}, one, ""), nil); hr.StatusCode != 200 {
		t.Errorf("one image within the budget: %d %s", hr.StatusCode, b)
	}
	three := runtimetest.Images(3, size, 1)
	if hr, b := post(t, r.url+"/v2/models/artnet/infer", "application/json", inferBody(t, []int{3, 3, size, size}, three, ""), nil); hr.StatusCode != 413 {
		t.Errorf("three images over the budget: %d %s, want 413", hr.StatusCode, b)
	}
	if err := r.s.mem.acquire(context.Background(), 2*per, 0); err != nil {
		t.Fatal(err)
	}
	hr, b := post(t, r.url+"/v2/models/artnet/infer", "application/json", inferBody(t, []int{1, 3, size, size}, one, ""), nil)
	if hr.StatusCode != 503 || hr.Header.Get("Retry-After") == "" {
		t.Errorf("budget in use: %d %s, want 503", hr.StatusCode, b)
	}
	r.s.mem.release(2 * per)
	waitFor(t, "reservations released", func() bool { return r.s.mem.inUse() == 0 })
}

// A burst of concurrent requests all complete and leave nothing reserved, nothing held.
func TestAdmissionReleasesEverything(t *testing.T) {
	m := tinyModel(t)
	r := serve(t, testConfig(), m, nil)
	data := jpegBytes(t, picture(300, 200, 9))
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			url := r.url + "/v1/predict"
			if i%3 == 0 {
				url += "?attention=1"
			}
			if resp, body := post(t, url, "image/jpeg", data, nil); resp.StatusCode != 200 {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		}(i)
	}
	wg.Wait()
	waitFor(t, "all released", func() bool {
		return r.s.mem.inUse() == 0 && len(r.s.bodySlots) == 0 && r.s.b.pending.Load() == 0 && r.s.b.decoding.Load() == 0
	})
}

// decodeMemory is what /v1/predict reserves to decode data.
func decodeMemory(s *Server, data []byte) (int64, error) {
	h, err := preprocess.DecodeConfig(bytes.NewReader(data), s.popt)
	if err != nil {
		return 0, err
	}
	return h.DecodeMemory(s.popt), nil
}
