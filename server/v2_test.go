package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

func TestV2Metadata(t *testing.T) {
	m := tinyModel(t)
	r := serve(t, testConfig(), m, nil)
	var md ModelMetadata
	if resp, body := get(t, r.url+"/v2/models/artnet", &md); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	cfg := spec.Tiny()
	want := fmt.Sprintf("image FP32 [-1 3 %d %d]|image_bytes BYTES [-1]|style FP32 [-1 27]|genre FP32 [-1 10]|artist FP32 [-1 23]|attention FP32 [-1 %d]", cfg.ImageSize, cfg.ImageSize, cfg.Tokens())
	var got []string
	for _, x := range append(md.Inputs, md.Outputs...) {
		got = append(got, fmt.Sprintf("%s %s %v", x.Name, x.Datatype, x.Shape))
	}
	if strings.Join(got, "|") != want || md.Name != "artnet" || md.Platform == "" {
		t.Errorf("metadata %+v\n got %s\nwant %s", md, strings.Join(got, "|"), want)
	}
}

func inferBody(t *testing.T, shape []int, data any, extra string) []byte {
	t.Helper()
	d, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := json.Marshal(shape)
	return []byte(fmt.Sprintf(`{"id":"req-1","inputs":[{"name":"image","shape":%s,"datatype":"FP32","data":%s}]%s}`, s, d, extra))
}

func TestV2Infer(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 4 << 20
	r := serve(t, cfg, m, nil)
	size := spec.Tiny().ImageSize
	const batch = 3
	imgs := runtimetest.Images(batch, size, 42)
	want, err := m.Run(context.Background(), imgs, batch)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, resp InferResponse, outs []string) {
		t.Helper()
		if resp.ModelName != "artnet" || resp.ID != "req-1" || len(resp.Outputs) != len(outs) {
			t.Fatalf("%s: response %s/%s with %d outputs", name, resp.ModelName, resp.ID, len(resp.Outputs))
		}
		for i, o := range resp.Outputs {
			w := want.Attention
			if o.Name != "attention" {
				w = want.Probs[o.Name]
			}
			if o.Name != outs[i] || o.Datatype != "FP32" || len(o.Shape) != 2 || o.Shape[0] != batch || o.Shape[1]*batch != len(w) || len(o.Data) != len(w) {
				t.Fatalf("%s: output %d: %s %s %v with %d values", name, i, o.Name, o.Datatype, o.Shape, len(o.Data))
			}
			for j := range w {
				if math.Abs(float64(o.Data[j]-w[j])) > 1e-5 {
					t.Fatalf("%s: output %s[%d] = %g, want %g", name, o.Name, j, o.Data[j], w[j])
				}
			}
		}
	}
	shape := []int{batch, 3, size, size}
	var resp InferResponse
	if hr, body := post(t, r.url+"/v2/models/artnet/infer", "application/json", inferBody(t, shape, imgs, ""), &resp); hr.StatusCode != 200 {
		t.Fatalf("flat: %d %s", hr.StatusCode, body)
	}
	check("flat", resp, []string{"style", "genre", "artist", "attention"})

	// Nested data [B][3][H][W], and a selection of outputs.
	nested := make([][][][]float32, batch)
	for b := range nested {
		nested[b] = make([][][]float32, 3)
		for c := range nested[b] {
			nested[b][c] = make([][]float32, size)
			for y := range nested[b][c] {
				o := ((b*3+c)*size + y) * size
				nested[b][c][y] = imgs[o : o+size]
			}
		}
	}
	resp = InferResponse{}
	if hr, body := post(t, r.url+"/v2/models/artnet/infer", "", inferBody(t, shape, nested, `,"outputs":[{"name":"attention"},{"name":"genre"}]`), &resp); hr.StatusCode != 200 {
		t.Fatalf("nested: %d %s", hr.StatusCode, body)
	}
	check("nested", resp, []string{"attention", "genre"})

	one := imgs[:3*size*size]
	bad := []struct {
		name, ctype string
		body        string
		code        int
		msg         string
	}{
		{"not JSON", "application/json", `{"inputs":`, 400, "request JSON"},
		{"wrong content type", "text/plain", string(inferBody(t, []int{1, 3, size, size}, one, "")), 415, "content type"},
		{"no inputs", "application/json", `{"inputs":[]}`, 400, "exactly one input"},
		{"wrong name", "application/json", strings.Replace(string(inferBody(t, []int{1, 3, size, size}, one, "")), `"image"`, `"input"`, 1), 400, `input "input"`},
		{"wrong datatype", "application/json", strings.Replace(string(inferBody(t, []int{1, 3, size, size}, one, "")), `"FP32"`, `"INT8"`, 1), 400, "datatype"},
		{"wrong shape", "application/json", string(inferBody(t, []int{1, 3, size, size + 1}, one, "")), 400, "shape"},
		{"zero batch", "application/json", string(inferBody(t, []int{0, 3, size, size}, []float32{}, "")), 400, "batch 0"},
		{"batch too large", "application/json", string(inferBody(t, []int{1000, 3, size, size}, one, "")), 400, "batch 1000"},
		{"too few values", "application/json", string(inferBody(t, []int{1, 3, size, size}, one[:10], "")), 400, "needs"},
		{"too many nested values", "application/json", string(inferBody(t, []int{1, 3, size, size}, [][]float32{one, {1}}, "")), 400, "more than"},
		{"strings in data", "application/json", string(inferBody(t, []int{1, 3, size, size}, []string{"a"}, "")), 400, "want numbers"},
		{"unknown output", "application/json", string(inferBody(t, []int{1, 3, size, size}, one, `,"outputs":[{"name":"mood"}]`)), 400, "mood"},
	}
	for _, c := range bad {
		hr, body := post(t, r.url+"/v2/models/artnet/infer", c.ctype, []byte(c.body), nil)
		if hr.StatusCode != c.code {
			t.Errorf("%s: %d, want %d: %.200s", c.name, hr.StatusCode, c.code, body)
			continue
		}
		if msg := jsonError(t, hr, body); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: error %q does not mention %q", c.name, msg, c.msg)
		}
	}
	if hr, _ := get(t, r.url+"/v2/models/artnet/infer", nil); hr.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET infer: %d", hr.StatusCode)
	}
}

// A v2 request with more images than Batch runs alone, and one that does not fit into the
// batch being collected waits for the next: both get their own rows.
func TestV2LargerThanBatch(t *testing.T) {
	m := tinyModel(t)
	g := newGated(m, true)
	cfg := testConfig()
	cfg.Batch, cfg.MaxDelay, cfg.MaxBodyBytes = 4, time.Second, 4<<20
	r := serve(t, cfg, g, nil)
	size := spec.Tiny().ImageSize
	send := func(n int, seed uint64, done chan<- error) {
		imgs := runtimetest.Images(n, size, seed)
		want, err := m.Run(context.Background(), imgs, n)
		if err != nil {
			done <- err
			return
		}
		var resp InferResponse
		hr, body := post(t, r.url+"/v2/models/artnet/infer", "application/json", inferBody(t, []int{n, 3, size, size}, imgs, `,"outputs":[{"name":"style"}]`), &resp)
		if hr.StatusCode != 200 {
			done <- fmt.Errorf("batch %d: %d %s", n, hr.StatusCode, body)
			return
		}
		for j, v := range want.Probs["style"] {
			if math.Abs(float64(resp.Outputs[0].Data[j]-v)) > 1e-5 {
				done <- fmt.Errorf("batch %d: style[%d] = %g, want %g", n, j, resp.Outputs[0].Data[j], v)
				return
			}
		}
		done <- nil
	}
	done := make(chan error, 4)
	go send(1, 1, done)
	<-g.entered // [1] is running; queue 3, 3, 6 (with Batch 4): batches [3] [3] [6]
	for i, n := range []int{3, 3, 6} {
		go send(n, uint64(2+i), done)
		waitFor(t, fmt.Sprintf("request %d queued", i+2), func() bool { return len(r.s.b.ch) == i+1 })
	}
	close(g.release)
	for i := 0; i < 4; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if sizes, _ := g.runs(); fmt.Sprint(sizes) != "[1 3 3 6]" {
		t.Errorf("runs %v, want [1 3 3 6]", sizes)
	}
}
