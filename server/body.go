package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"path"
	"strings"
	"time"
)

// ErrBusy is returned (wrapped) when every body-read slot (Config.BodyReads) stayed taken for
// Config.AdmitWait; the server answers 503 with Retry-After.
var ErrBusy = errors.New("too many request bodies being read")

// errSlowBody is a body arriving slower than Config.MinBodyRate; answered 408.
var errSlowBody = errors.New("request body arrived too slowly")

// bodyRead is one request's admission to reading its body: a body-read slot, the minimum
// transfer rate on the connection, and the memory reservation the body (and what is decoded
// from it) is charged to. done releases all of it.
type bodyRead struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	mem   *reservation
	body  io.Reader
	rate  *rateReader
	freed bool
}

// startBody takes a body-read slot (waiting at most AdmitWait) and sets up the rate-limited,
// size-capped body of r.
func (s *Server) startBody(w http.ResponseWriter, r *http.Request) (*bodyRead, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, clientErr(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.cfg.MaxBodyBytes)
	}
	select {
	case s.bodySlots <- struct{}{}:
	default:
		t := time.NewTimer(s.cfg.AdmitWait)
		defer t.Stop()
		select {
		case s.bodySlots <- struct{}{}:
		case <-t.C:
			return nil, fmt.Errorf("%w: %d of %d busy for %v", ErrBusy, len(s.bodySlots), cap(s.bodySlots), s.cfg.AdmitWait)
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	rr := &rateReader{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), rc: http.NewResponseController(w),
		start: time.Now(), rate: s.cfg.MinBodyRate, grace: s.cfg.MinBodyRateGrace, ok: true}
	if s.cfg.ReadTimeout > 0 {
		rr.end = rr.start.Add(s.cfg.ReadTimeout)
	}
	return &bodyRead{s: s, w: w, r: r, body: rr, rate: rr, mem: &reservation{m: s.mem, wait: s.cfg.AdmitWait}}, nil
}

// endRead gives the body-read slot back (the body has been read, or failed); the memory
// reservation stays until done.
func (b *bodyRead) endRead() {
	if !b.freed {
		b.freed = true
		b.rate.finish()
		<-b.s.bodySlots
	}
}

// done releases everything the request still holds.
func (b *bodyRead) done() {
	b.endRead()
	b.mem.release()
}

// rateReader enforces a minimum transfer rate on the client: the time spent waiting for its
// bytes must stay below grace + bytes/rate. It sets the connection's read deadline to the end
// of that allowance before each Read, so a stalled client times out in its Read (408) without
// a goroutine watching it. Only waiting counts: while the server itself is slow to read
// (parsing, starved of CPU), the client is not blamed. Where deadlines are not supported
// (httptest), it only reads.
type rateReader struct {
	r      io.Reader
	rc     *http.ResponseController
	start  time.Time
	end    time.Time // the request's ReadTimeout, which a deadline never extends; zero: none
	rate   int64     // bytes per second; <= 0: no minimum
	grace  time.Duration
	n      int64
	waited time.Duration // time spent in Read
	ok     bool          // deadlines work
	set    bool          // a deadline of ours is on the connection
}

func (x *rateReader) Read(p []byte) (int, error) {
	now := time.Now()
	if x.ok && x.rate > 0 {
		allowed := x.grace + time.Duration(float64(x.n)/float64(x.rate)*float64(time.Second)) - x.waited
		d := now.Add(max(allowed, time.Millisecond))
		if !x.end.IsZero() && x.end.Before(d) {
			d = x.end
		}
		if err := x.rc.SetReadDeadline(d); err != nil {
			x.ok = false
		} else {
			x.set = true
		}
	}
	n, err := x.r.Read(p)
	x.n += int64(n)
	x.waited += time.Since(now)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && x.rate > 0 {
		if x.end.IsZero() || time.Now().Before(x.end) {
			return n, fmt.Errorf("%w: %d bytes in %.1f s of waiting, below the minimum of %d bytes/s (after the first %v)", errSlowBody, x.n, x.waited.Seconds(), x.rate, x.grace)
		}
	}
	if err == io.EOF {
		x.finish()
	}
	return n, err
}

// finish puts back the request's own deadline (ReadTimeout from its start, none without
// one), so that net/http's background read after the body does not hit a rate deadline,
// which would cancel the request's context.
func (x *rateReader) finish() {
	if x.set {
		x.set = false
		_ = x.rc.SetReadDeadline(x.end)
	}
}

// readAll reads the whole body, reserving its bytes from the request's memory reservation as
// they arrive: the buffer starts at 64 KiB and doubles (up to the declared length, when
// there is one), each growth reserved first. A client that declares 32 MiB and sends a byte
// holds 64 KiB of the budget, not 32 MiB.
func (b *bodyRead) readAll(ctx context.Context, r io.Reader, size int64) ([]byte, error) {
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if size > 0 && int64(len(buf)) == size {
				var one [1]byte // the declared length is read: the next Read must say EOF
				if n, err := r.Read(one[:]); n > 0 || (err != nil && err != io.EOF) {
					if err == nil {
						err = errors.New("more bytes than declared")
					}
					return nil, b.s.bodyErr(err)
				}
				return buf, nil
			}
			next := max(2*int64(cap(buf)), 64<<10)
			if size > 0 {
				next = min(next, size)
			}
			if err := b.mem.grow(ctx, next); err != nil {
				return nil, err
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			b.mem.shrink(int64(cap(buf))) // the old buffer is garbage now
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if size > 0 && int64(len(buf)) < size {
				return nil, b.s.bodyErr(io.ErrUnexpectedEOF)
			}
			return buf, nil
		}
		if err != nil {
			return nil, b.s.bodyErr(err)
		}
	}
}

// readImage returns the upload's name and bytes: a raw body (image/*, application/octet-stream
// or no content type) or the multipart/form-data field "image". The body-read slot is given
// back when it returns.
func (b *bodyRead) readImage(ctx context.Context) (string, []byte, error) {
	defer b.endRead()
	ct := b.r.Header.Get("Content-Type")
	mt, params := "", map[string]string(nil)
	if ct != "" {
		var err error
		if mt, params, err = mime.ParseMediaType(ct); err != nil {
			return "", nil, clientErr(http.StatusUnsupportedMediaType, "content type %q: %v", ct, err)
		}
	}
	switch {
	case mt == "" || mt == "application/octet-stream" || strings.HasPrefix(mt, "image/"):
		data, err := b.readAll(ctx, b.body, b.r.ContentLength)
		return "upload", data, err
	case mt == "multipart/form-data":
		if params["boundary"] == "" {
			return "", nil, clientErr(http.StatusBadRequest, "multipart/form-data without a boundary")
		}
		mr := multipart.NewReader(b.body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return "", nil, clientErr(http.StatusBadRequest, `multipart form has no field "image"`)
			}
			if err != nil {
				return "", nil, b.s.bodyErr(err)
			}
			if part.FormName() != "image" {
				_, _ = io.Copy(io.Discard, part)
				continue
			}
			data, err := b.readAll(ctx, part, 0)
			if err != nil {
				return "", nil, err
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

// bodyErr classifies an error reading the request body.
func (s *Server) bodyErr(err error) error {
	var mbe *http.MaxBytesError
	var ne net.Error
	var he *httpError
	switch {
	case errors.As(err, &he), errors.Is(err, ErrMemoryBudget), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &mbe):
		return clientErr(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes)
	case errors.Is(err, errSlowBody):
		return clientErr(http.StatusRequestTimeout, "%v", err)
	case errors.As(err, &ne) && ne.Timeout():
		return clientErr(http.StatusRequestTimeout, "reading the request body timed out")
	}
	return clientErr(http.StatusBadRequest, "reading the request body: %v", err)
}
