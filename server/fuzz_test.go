package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPredictBody sends arbitrary bodies through /v1/predict (reading, sniffing, decoding,
// preprocessing, batching, answering): the answer must be 200 with a prediction or a 4xx JSON
// error, never a 5xx or a panic. Seeded with the image fixtures (good and bad).
func FuzzPredictBody(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures in %s: %v", fixtures, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	m := tinyModel(f)
	cfg := testConfig()
	cfg.MaxPixels = 1 << 20
	cfg.MaxDelay = 0
	s, err := New(cfg, m, quiet())
	if err != nil {
		f.Fatal(err)
	}
	s.b.start(1)
	f.Cleanup(s.b.close)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, multipartForm bool) {
		ctype := "application/octet-stream"
		if multipartForm {
			ctype, body = multipartBody(t, "image", "fuzz.bin", body)
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/predict?topk=2", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var ans map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatalf("status %d, answer not JSON: %.200q", rec.Code, rec.Body.String())
		}
		switch {
		case rec.Code == http.StatusOK:
			if ans["style"] == nil || ans["genre"] == nil || ans["artist"] == nil {
				t.Fatalf("200 without a prediction: %.300s", rec.Body.String())
			}
		case rec.Code >= 400 && rec.Code < 500:
			if msg, _ := ans["error"].(string); msg == "" {
				t.Fatalf("%d without an error message: %.300s", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d: %.300s", rec.Code, rec.Body.String())
		}
		if p := s.b.pending.Load(); p != 0 {
			t.Fatalf("queue slot leaked: pending %d", p)
		}
	})
}
