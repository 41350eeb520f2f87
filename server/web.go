package server

import (
	_ "embed"
	"net/http"
	"strconv"
)

// indexHTML is the web page served at GET /: pick or drop an image, see the top-k per task and
// the attention heatmap. Plain HTML and JavaScript, no build step.
//
//go:embed web/index.html
var indexHTML []byte

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "no route "+r.URL.Path+" (see GET / for the web page, POST /v1/predict, /v2/..., /metrics)")
		return
	}
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(indexHTML)))
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(indexHTML)
	}
}
