// Package datadl downloads the WikiArt/ArtGAN data for users with internet access: the nine
// split files (six CSVs, three class lists) from the ArtGAN repository and the WikiArt image
// archive, which it unpacks into DEST/images/<StyleFolder>/<file>, the layout package wikiart
// reads. Downloads resume after an interruption (HTTP Range on a .part file; a server that
// ignores Range makes it start over), are checked against Content-Length and, where known, an
// expected size and sha256 (built in for the split files, optional manifest for the rest), and
// report progress. Unpacking refuses entry paths that would leave the destination (zip-slip)
// and skips files already there, so a rerun does no work twice.
//
// It has its own folder, apart from wikiart/, because it is the only part of artnet that talks
// to the network: wikiart stays a standard-library reader of local files that training,
// evaluation and serving link without any HTTP client code, and datadl can be tested (against
// loopback servers only) and changed without touching the data contract.
package datadl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/artnet/artnet/internal/atomicfile"
)

// Expect is what a downloaded file must be; zero fields are not checked.
type Expect struct {
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // lower-case hex
}

// Fetcher downloads single files resumably.
type Fetcher struct {
	// Client is the HTTP client (nil → a client with a 30 s connect/header timeout and no
	// overall timeout: the image archive takes hours).
	Client *http.Client
	// Retries is how many more times a failed transfer is retried, resuming where it stopped.
	Retries int
	// RetryWait is the pause before a retry (0 → 2 s).
	RetryWait time.Duration
	// Stall aborts (and, with Retries, resumes) a transfer that receives nothing this long
	// (0 → 60 s).
	Stall time.Duration
	// Progress receives progress (nil: none).
	Progress Progress
	// Log receives what happens (nil → slog.Default()).
	Log *slog.Logger
}

// FetchResult says what Fetch did.
type FetchResult struct {
	Path      string
	Bytes     int64 // size of the file
	Skipped   bool  // it was already there (and matched what is expected)
	Resumed   bool  // a partial download was continued with Range
	Restarted bool  // a partial download was thrown away (server ignored Range or was inconsistent)
}

// permanentError is a failure that retrying cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(format string, a ...any) error { return permanentError{fmt.Errorf(format, a...)} }

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// Fetch downloads url to dest. An existing dest is kept when it matches want (or when nothing
// is expected: dest only appears, by rename, once complete). Bytes arrive in dest+".part",
// which a later call continues with a Range request; a server that answers 200 instead of 206
// makes it start over. The size is checked against Content-Length and want.Size, the sha256
// against want.SHA256; a mismatch removes the .part file and is an error naming dest.
func (f *Fetcher) Fetch(ctx context.Context, url, dest string, want Expect) (res FetchResult, err error) {
	res.Path = dest
	if st, err := os.Stat(dest); err == nil {
		if !st.Mode().IsRegular() {
			return res, fmt.Errorf("datadl: %s exists and is not a regular file", dest)
		}
		if err := verify(dest, st.Size(), want); err != nil {
			return res, fmt.Errorf("%w (delete it to download again)", err)
		}
		res.Skipped, res.Bytes = true, st.Size()
		f.log().Info("already there", "file", dest, "bytes", st.Size())
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return res, fmt.Errorf("datadl: %w", err)
	}
	part := dest + ".part"
	wait := f.RetryWait
	if wait <= 0 {
		wait = 2 * time.Second
	}
	for attempt := 0; ; attempt++ {
		err = f.transfer(ctx, url, part, want, &res)
		if err == nil {
			break
		}
		var pe permanentError
		if errors.As(err, &pe) || ctx.Err() != nil || attempt >= f.Retries {
			return res, err
		}
		f.log().Warn("download interrupted; retrying", "file", dest, "attempt", attempt+1, "of", f.Retries, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return res, fmt.Errorf("datadl: %s: %w", dest, ctx.Err())
		}
	}
	st, err := os.Stat(part)
	if err != nil {
		return res, fmt.Errorf("datadl: %w", err)
	}
	if err := verify(part, st.Size(), want); err != nil {
		_ = os.Remove(part)
		return res, err
	}
	if err := atomicfile.Rename(part, dest); err != nil {
		return res, fmt.Errorf("datadl: %w", err)
	}
	res.Bytes = st.Size()
	f.log().Info("downloaded", "file", dest, "bytes", st.Size(), "resumed", res.Resumed, "restarted", res.Restarted)
	return res, nil
}

// verify checks a file's size and sha256 against want.
func verify(path string, size int64, want Expect) error {
	if want.Size > 0 && size != want.Size {
		return fmt.Errorf("datadl: %s: size %d bytes, want %d", path, size, want.Size)
	}
	if want.SHA256 == "" {
		return nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("datadl: %w", err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return fmt.Errorf("datadl: %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want.SHA256) {
		return fmt.Errorf("datadl: %s: checksum mismatch: sha256 %s, want %s", path, got, strings.ToLower(want.SHA256))
	}
	return nil
}

// transfer makes one request and appends to part; nil when part holds the whole file.
func (f *Fetcher) transfer(ctx context.Context, url, part string, want Expect, res *FetchResult) error {
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
	}
	if want.Size > 0 && have > want.Size {
		f.log().Warn("partial file larger than expected; starting over", "file", part, "bytes", have, "want", want.Size)
		have = 0
		res.Restarted = true
	}
	if want.Size > 0 && have == want.Size {
		return nil // complete; verified by the caller
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return permanent("datadl: %s: %v", url, err)
	}
	req.Header.Set("Accept-Encoding", "identity") // byte offsets must be the file's
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return fmt.Errorf("datadl: GET %s: %w", url, err)
	}
	defer resp.Body.Close()

	total := int64(-1) // the whole file's size, when the server says it
	flags := os.O_WRONLY | os.O_CREATE
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, end, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != have {
			// Not the range asked for: start over rather than splice wrong bytes.
			f.log().Warn("server answered another range; starting over", "url", url, "content_range", resp.Header.Get("Content-Range"))
			_ = os.Remove(part)
			res.Restarted = true
			return fmt.Errorf("datadl: GET %s: Content-Range %q does not continue at byte %d", url, resp.Header.Get("Content-Range"), have)
		}
		total = size
		if total < 0 && resp.ContentLength >= 0 {
			total = have + resp.ContentLength
		}
		_ = end
		flags |= os.O_APPEND
		res.Resumed = true
	case resp.StatusCode == http.StatusOK:
		if have > 0 {
			f.log().Info("server ignores Range; starting over", "url", url, "had", have)
			res.Restarted = true
			have = 0
		}
		flags |= os.O_TRUNC
		total = resp.ContentLength
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		_, _, size, _ := parseContentRange(resp.Header.Get("Content-Range"))
		if size == have {
			return nil // the partial file is already whole
		}
		_ = os.Remove(part)
		res.Restarted = true
		return fmt.Errorf("datadl: GET %s: range from byte %d not satisfiable; starting over", url, have)
	case resp.StatusCode >= 500:
		return fmt.Errorf("datadl: GET %s: %s", url, resp.Status)
	default:
		return permanent("datadl: GET %s: %s", url, resp.Status)
	}
	if want.Size > 0 && total >= 0 && total != want.Size {
		return permanent("datadl: GET %s: the server's file is %d bytes, want %d", url, total, want.Size)
	}
	if want.Size > 0 && total < 0 {
		total = want.Size
	}

	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return permanent("datadl: %v", err)
	}
	stall := f.Stall
	if stall <= 0 {
		stall = 60 * time.Second
	}
	watchdog := time.AfterFunc(stall, cancel)
	defer watchdog.Stop()
	if f.Progress != nil {
		f.Progress.Start(filepath.Base(strings.TrimSuffix(part, ".part")), have, total)
		defer f.Progress.Finish()
	}
	n, cerr := copyWatched(out, resp.Body, watchdog, stall, f.Progress)
	if serr := out.Sync(); cerr == nil {
		cerr = serr
	}
	if clerr := out.Close(); cerr == nil {
		cerr = clerr
	}
	got := have + n
	if cerr != nil {
		if rctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("datadl: GET %s: nothing received for %s after byte %d", url, stall, got)
		}
		return fmt.Errorf("datadl: GET %s: transfer broke off at byte %d of %s: %w", url, got, sizeText(total), cerr)
	}
	if total >= 0 && got != total {
		if got > total {
			_ = os.Remove(part)
			return permanent("datadl: GET %s: received %d bytes, more than the %d announced", url, got, total)
		}
		return fmt.Errorf("datadl: GET %s: connection ended at byte %d of %d", url, got, total)
	}
	return nil
}

// copyWatched copies src to dst, pushing the stall watchdog back after every read.
func copyWatched(dst io.Writer, src io.Reader, watchdog *time.Timer, stall time.Duration, p Progress) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			watchdog.Reset(stall)
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			if p != nil {
				p.Add(int64(k))
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// parseContentRange parses "bytes START-END/SIZE" or "bytes */SIZE"; SIZE may be "*" (-1).
func parseContentRange(s string) (start, end, size int64, err error) {
	start, end, size = -1, -1, -1
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return start, end, size, fmt.Errorf("content-range %q", s)
	}
	rng, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return start, end, size, fmt.Errorf("content-range %q", s)
	}
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return -1, -1, -1, fmt.Errorf("content-range %q", s)
		}
	}
	if rng == "*" {
		return start, end, size, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return -1, -1, size, fmt.Errorf("content-range %q", s)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return -1, -1, size, fmt.Errorf("content-range %q", s)
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil {
		return -1, -1, size, fmt.Errorf("content-range %q", s)
	}
	return start, end, size, nil
}
