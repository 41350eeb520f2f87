package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/image/draw"

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
	case errors.Is(err, ErrQueueFull), errors.Is(err, ErrShuttingDown), errors.Is(err, ErrMemoryBudget), errors.Is(err, ErrBusy), errors.Is(err, ErrModelUnloaded):
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
	if r.ContentLength != 0 {
		// The body may be unread (refused before or while reading it): close the connection
		// after the answer instead of letting net/http read up to 256 KiB of it first, which a
		// slow client would stretch to ReadTimeout.
		w.Header().Set("Connection", "close")
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

// MaxOverlaySide caps the longer side of the attention overlays /v1/predict draws
// (?attention=1, ?attention=png): a larger upload is scaled down first.
const MaxOverlaySide = 1024

func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	topk, att, err := parsePredictQuery(r, s.cfg.TopK)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.startBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer body.done()
	pred, img, err := s.predictOne(r.Context(), body, topk, att != attentionNone)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if att == attentionNone {
		writeJSON(w, http.StatusOK, PredictResponse{Prediction: pred})
		return
	}
	var png bytes.Buffer
	gh, gw := s.mcfg.Grid()
	if err := heatmap.EncodePNG(&png, heatmap.Overlay(img.img, pred.Attention, gh, gw, img.crop)); err != nil {
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

// overlayBase is the picture an attention overlay is drawn on (the upload, at most
// MaxOverlaySide on its longer side) and where the model's crop lies in it.
type overlayBase struct {
	img  image.Image
	crop image.Rectangle
}

// overlayMemory is what drawing and encoding a w×h overlay may hold: the scaled picture, the
// overlay, the PNG and its base64 text.
func overlayMemory(w, h int) int64 {
	ow, oh := overlaySize(w, h)
	return int64(ow) * int64(oh) * 4 * 4
}

func overlaySize(w, h int) (int, int) {
	if l := max(w, h); l > MaxOverlaySide {
		return max(1, w*MaxOverlaySide/l), max(1, h*MaxOverlaySide/l)
	}
	return w, h
}

// predictOne reads, decodes and predicts the request's image. Memory is reserved in body's
// reservation before each step: the body as it arrives, then the worst case of decoding it
// (from its header), and the overlay when asked; the decoded picture is dropped (and its
// reservation given back) before the request waits for its model run.
func (s *Server) predictOne(ctx context.Context, body *bodyRead, topk int, withAttention bool) (*predict.Prediction, *overlayBase, error) {
	arr := s.b.arriving()
	defer arr.cancel()
	name, data, err := body.readImage(ctx)
	if err != nil {
		return nil, nil, err
	}
	hdr, err := preprocess.DecodeConfig(bytes.NewReader(data), s.popt)
	if err != nil {
		return nil, nil, err
	}
	decode, overlay := hdr.DecodeMemory(s.popt), int64(0)
	if withAttention {
		overlay = overlayMemory(hdr.Width, hdr.Height)
	}
	if err := body.mem.grow(ctx, decode+overlay); err != nil {
		return nil, nil, err
	}
	img, err := s.pl.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	body.mem.shrink(int64(len(data)))
	data = nil
	tp := s.tensors.Get().(*[]float32)
	if err := s.pl.Preprocess(*tp, img); err != nil {
		s.tensors.Put(tp)
		return nil, nil, err
	}
	var base *overlayBase
	if withAttention {
		b := img.Bounds()
		base = &overlayBase{img: img, crop: preprocess.CropBox(b.Dx(), b.Dy(), s.popt)}
		if ow, oh := overlaySize(b.Dx(), b.Dy()); ow != b.Dx() || oh != b.Dy() {
			small := image.NewRGBA(image.Rect(0, 0, ow, oh))
			draw.ApproxBiLinear.Scale(small, small.Bounds(), img, b, draw.Src, nil)
			sx, sy := float64(ow)/float64(b.Dx()), float64(oh)/float64(b.Dy())
			c := base.crop
			base = &overlayBase{img: small, crop: image.Rect(int(float64(c.Min.X)*sx), int(float64(c.Min.Y)*sy),
				int(math.Ceil(float64(c.Max.X)*sx)), int(math.Ceil(float64(c.Max.Y)*sy))).Intersect(small.Bounds())}
		}
	}
	img = nil
	body.mem.shrink(decode) // the decoded picture is garbage now (or scaled into the overlay's share)
	res, err := s.b.do(ctx, *tp, 1, arr)
	if err != nil {
		return nil, nil, err // tp may still be read by the batcher: not reused
	}
	s.tensors.Put(tp)
	pred, err := s.pl.Postprocess(res, 0, name, topk, withAttention)
	if err != nil {
		return nil, nil, err
	}
	return pred, base, nil
}
