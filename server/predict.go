package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/artnet/artnet/heatmap"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

// PredictResponse is /v1/predict's JSON: the prediction as `artnet predict --json` prints it,
// plus, with ?attention=1, the attention overlay as a base64 PNG.
type PredictResponse struct {
	*predict.Prediction
	AttentionPNG string `json:"attention_png,omitempty"`
}

// httpError is an error with the status code it should be answered with.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func clientErr(code int, format string, args ...any) error {
	return &httpError{code: code, err: fmt.Errorf(format, args...)}
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var he *httpError
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, ErrQueueFull), errors.Is(err, ErrShuttingDown):
		return http.StatusServiceUnavailable
	case errors.As(err, &mbe), errors.Is(err, preprocess.ErrTooManyPixels):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, preprocess.ErrEmpty):
		return http.StatusBadRequest
	case errors.Is(err, preprocess.ErrUnknownFormat):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, preprocess.ErrTooSmall), errors.Is(err, preprocess.ErrTruncated), errors.Is(err, preprocess.ErrCorrupt):
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return clientClosed
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout
	}
	return http.StatusInternalServerError
}

// fail answers err as JSON with its status (nothing when the client is gone).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	log := logger(r.Context(), s.log)
	if code == clientClosed && r.Context().Err() == nil {
		code = http.StatusInternalServerError // a context error that is not the client's
	}
	if code == clientClosed {
		log.Debug("client gone", "err", err)
		return
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	msg := err.Error()
	if code >= 500 && code != http.StatusServiceUnavailable {
		log.Error("request failed", "err", err)
		msg = "internal error: " + msg
	} else {
		log.Debug("bad request", "code", code, "err", err)
	}
	writeError(w, code, msg)
}

type attentionMode int

const (
	attentionNone attentionMode = iota
	attentionJSON
	attentionPNG
)

func parsePredictQuery(r *http.Request, defTopK int) (topk int, att attentionMode, err error) {
	q := r.URL.Query()
	topk = defTopK
	if v := q.Get("topk"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 || k > 1000 {
			return 0, 0, clientErr(http.StatusBadRequest, "query parameter topk: %q is not an integer in 1..1000", v)
		}
		topk = k
	}
	switch v := q.Get("attention"); strings.ToLower(v) {
	case "", "0", "false":
		att = attentionNone
	case "1", "true":
		att = attentionJSON
	case "png":
		att = attentionPNG
	default:
		return 0, 0, clientErr(http.StatusBadRequest, "query parameter attention: %q is not 0, 1 or png", v)
	}
	return topk, att, nil
}

func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	topk, att, err := parsePredictQuery(r, s.cfg.TopK)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.b.admit(); err != nil {
		s.fail(w, r, err)
		return
	}
	pred, img, err := s.predictOne(r.Context(), w, r, topk, att != attentionNone)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if att == attentionNone {
		writeJSON(w, http.StatusOK, PredictResponse{Prediction: pred})
		return
	}
	var png bytes.Buffer
	crop := preprocess.CropBox(img.Bounds().Dx(), img.Bounds().Dy(), s.popt)
	gh, gw := s.mcfg.Grid()
	if err := heatmap.EncodePNG(&png, heatmap.Overlay(img, pred.Attention, gh, gw, crop)); err != nil {
		s.fail(w, r, fmt.Errorf("encoding the overlay: %w", err))
		return
	}
	if att == attentionPNG {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", strconv.Itoa(png.Len()))
		_, _ = w.Write(png.Bytes())
		return
	}
	writeJSON(w, http.StatusOK, PredictResponse{Prediction: pred, AttentionPNG: base64.StdEncoding.EncodeToString(png.Bytes())})
}

// predictOne reads, decodes and predicts the request's image; the caller has admitted it.
func (s *Server) predictOne(ctx context.Context, w http.ResponseWriter, r *http.Request, topk int, withAttention bool) (*predict.Prediction, image.Image, error) {
	submitted := false
	defer func() {
		if !submitted {
			s.b.cancelAdmit()
		}
	}()
	name, data, err := s.readImage(w, r)
	if err != nil {
		return nil, nil, err
	}
	img, err := preprocess.DecodeImage(bytes.NewReader(data), s.popt)
	if err != nil {
		return nil, nil, err
	}
	data = nil
	tp := s.tensors.Get().(*[]float32)
	preprocess.ToTensorInto(*tp, img, s.popt)
	submitted = true
	res, err := s.b.do(ctx, *tp, 1)
	if err != nil {
		return nil, nil, err // tp may still be read by the batcher: not reused
	}
	s.tensors.Put(tp)
	if !withAttention {
		img = nil
	}
	return predict.Postprocess(s.mcfg, res, 0, name, topk, withAttention), img, nil
}

// readImage returns the upload's name and bytes: a raw body (image/*, application/octet-stream
// or no content type) or the multipart/form-data field "image".
func (s *Server) readImage(w http.ResponseWriter, r *http.Request) (string, []byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return "", nil, clientErr(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.cfg.MaxBodyBytes)
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	ct := r.Header.Get("Content-Type")
	mt, params := "", map[string]string(nil)
	if ct != "" {
		var err error
		if mt, params, err = mime.ParseMediaType(ct); err != nil {
			return "", nil, clientErr(http.StatusUnsupportedMediaType, "content type %q: %v", ct, err)
		}
	}
	switch {
	case mt == "" || mt == "application/octet-stream" || strings.HasPrefix(mt, "image/"):
		data, err := readAll(body, r.ContentLength)
		if err != nil {
			return "", nil, s.bodyErr(err)
		}
		return "upload", data, nil
	case mt == "multipart/form-data":
		if params["boundary"] == "" {
			return "", nil, clientErr(http.StatusBadRequest, "multipart/form-data without a boundary")
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return "", nil, clientErr(http.StatusBadRequest, `multipart form has no field "image"`)
			}
			if err != nil {
				return "", nil, s.bodyErr(err)
			}
			if part.FormName() != "image" {
				_, _ = io.Copy(io.Discard, part)
				continue
			}
			data, err := io.ReadAll(part)
			if err != nil {
				return "", nil, s.bodyErr(err)
			}
			name := path.Base(part.FileName())
			if name == "." || name == "/" || name == "" {
				name = "upload"
			}
			if len(name) > 255 {
				name = name[:255]
			}
			return name, data, nil
		}
	default:
		return "", nil, clientErr(http.StatusUnsupportedMediaType,
			`content type %q: send the image bytes (image/*, application/octet-stream) or multipart/form-data with a field "image"`, mt)
	}
}

func readAll(r io.Reader, size int64) ([]byte, error) {
	if size > 0 {
		buf := bytes.NewBuffer(make([]byte, 0, size+1))
		_, err := buf.ReadFrom(r)
		return buf.Bytes(), err
	}
	return io.ReadAll(r)
}

// bodyErr classifies an error reading the request body.
func (s *Server) bodyErr(err error) error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return clientErr(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes)
	case errors.As(err, &ne) && ne.Timeout():
		return clientErr(http.StatusRequestTimeout, "reading the request body timed out")
	}
	return clientErr(http.StatusBadRequest, "reading the request body: %v", err)
}
