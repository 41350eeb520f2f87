package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/runtime/runtimetest"
)

func TestV2Metadata(t *testing.T) {
	m := tinyModel(t)
	r := serve(t, testConfig(), m, nil)
	var md ModelMetadata
	if resp, body := get(t, r.url+"/v2/models/artnet", &md); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	cfg := spec.Tiny()
	want := fmt.Sprintf("image FP32 [-1 3 %d %d]|style FP32 [-1 27]|genre FP32 [-1 10]|artist FP32 [-1 23]|attention FP32 [-1 %d]", cfg.ImageSize, cfg.ImageSize, cfg.Tokens())
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
