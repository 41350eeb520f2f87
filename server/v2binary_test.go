package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

// binaryBody builds a request of the binary data extension: header JSON, then data.
func binaryBody(t *testing.T, name, datatype string, shape []int, data []byte, size int64) ([]byte, int) {
	t.Helper()
	h, err := json.Marshal(map[string]any{"id": "b1", "inputs": []map[string]any{{"name": name, "datatype": datatype, "shape": shape,
		"parameters": map[string]any{"binary_data_size": size}}}})
	if err != nil {
		t.Fatal(err)
	}
	return append(h, data...), len(h)
}

func lengthPrefixed(files ...[]byte) []byte {
	var b bytes.Buffer
	for _, f := range files {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(f)))
		b.Write(f)
	}
	return b.Bytes()
}

func postBinary(t *testing.T, url string, body []byte, hlen int, out any) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v2/models/artnet/infer", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(hlen))
	return do(t, req, out)
}

// image_bytes over HTTP (the binary data extension): the files decoded server-side give what
// decoding each alone gives; the FP32 tensor as binary equals the JSON answer; bad sizes 400.
func TestHTTPImageBytes(t *testing.T) {
	m := tinyModel(t)
	cfg := testConfig()
	cfg.MaxBodyBytes = 4 << 20
	r := serve(t, cfg, m, nil)
	files := [][]byte{jpegBytes(t, picture(120, 90, 3)), pngBytes(t, picture(80, 80, 4))}
	data := lengthPrefixed(files...)
	body, hlen := binaryBody(t, InputBytesName, "BYTES", []int{2}, data, int64(len(data)))
	var resp InferResponse
	if h, b := postBinary(t, r.url, body, hlen, &resp); h.StatusCode != 200 {
		t.Fatalf("%d %s", h.StatusCode, b)
	}
	if resp.ID != "b1" || resp.ModelVersion != "1" || len(resp.Outputs) != 4 {
		t.Fatalf("response %+v", resp)
	}
	for i, f := range files {
		want := ranAlone(t, m, f)
		for _, o := range resp.Outputs {
			w := o.Shape[1]
			exp := want.Attention
			if o.Name != spec.OutputAttention {
				exp = want.Probs[o.Name]
			}
			if d := maxDiff(o.Data[i*w:(i+1)*w], exp); d > 1e-5 {
				t.Errorf("file %d output %s differs from decoding it alone by %g", i, o.Name, d)
			}
		}
	}
	for _, c := range []struct {
		name   string
		body   []byte
		hlen   int
		status int
	}{
		{"size mismatch", func() []byte { b, _ := binaryBody(t, InputBytesName, "BYTES", []int{2}, data, 5); return b }(), hlen - len(fmt.Sprint(len(data))) + 1, 400},
		{"count mismatch", func() []byte {
			b, _ := binaryBody(t, InputBytesName, "BYTES", []int{3}, data, int64(len(data)))
			return b
		}(), hlen, 400},
		{"not an image", func() []byte {
			d := lengthPrefixed([]byte("hello"))
			b, _ := binaryBody(t, InputBytesName, "BYTES", []int{1}, d, int64(len(d)))
			return b
		}(), hlen - len(fmt.Sprint(len(data))) + 1, 415},
		{"header past the body", body[:10], hlen, 400},
	} {
		if h, b := postBinary(t, r.url, c.body, c.hlen, nil); h.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, h.StatusCode, b, c.status)
		}
	}
}
