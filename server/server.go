// Package server serves an exported artnet model over HTTP and gRPC.
//
// A Server answers
//
//	POST /v1/predict                 an image (raw body, or multipart field "image") → predict.Prediction JSON;
//	                                 ?topk=K, ?attention=1 (weights + base64 PNG overlay), ?attention=png (the PNG)
//	GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/artnet, /v2/models/artnet/ready
//	POST /v2/models/artnet/infer     KServe/Triton v2 JSON tensors: image [B,3,H,W] FP32 → style, genre, artist, attention;
//	                                 or the binary data extension (v2binary.go): image, or image_bytes (encoded files)
//	     /v2/models/artnet/versions/{v}[/infer], /v2/repository/index, /v2/repository/models/artnet/{load,unload}
//	gRPC inference.GRPCInferenceService (ServeAll; grpc.go): the same v2 protocol, image or image_bytes
//	GET  /metrics                    Prometheus (a registry per Server)
//	GET  /                           a small web page (embedded) to try the model
//
// with TLS and bearer tokens when configured (auth.go), model reload and versions (model.go)
// and OpenTelemetry spans (tracing.go).
//
// Requests are read, decoded and preprocessed in their own goroutines, then a dynamic batcher
// gathers them (at most Config.Batch images, waiting at most Config.MaxDelay) into one model
// run and hands each caller its own rows. A request whose client has gone is dropped before
// it costs a model run.
//
// Admission is in stages, so that no client can hold capacity hostage:
//
//   - reading the body takes one of Config.BodyReads slots, and the body must arrive at
//     Config.MinBodyRate after a grace period (408 below it): a slow client costs a
//     connection and a slot for seconds, not a model-queue slot;
//   - memory comes from one budget for the process (Config.MemBudget): the body as it
//     arrives, the worst case of decoding the image from its header (preprocess.DecodeConfig,
//     Header.DecodeMemory) before decoding, a v2 tensor from its shape before its data are
//     parsed (the JSON is read as a token stream that stops at the shape's element count and
//     at the body cap), an attention overlay (drawn at most MaxOverlaySide on its longer
//     side); a request waits up to Config.AdmitWait for it (ErrMemoryBudget, 503);
//   - a model-queue slot (Config.Queue) only once the input tensor is ready (ErrQueueFull, 503).
//
// Readiness (/v2/health/ready) is 503 while any stage is saturated. Errors are JSON
// {"error": "..."}: 4xx for bad input, 503 with Retry-After when full or stopping, 500 for
// model failures.
//
// Serve takes a listener (so callers and tests choose the address) and shuts down gracefully
// when its context ends: in-flight requests finish, the batcher drains, and then the caller
// closes the model.
//
// The package is a library (New, Serve) with no command-line code: the `serve` command of both
// binaries (flags, model loading, ORT shutdown) is cmd/internal/command, and any
// predict.Predictor can be served (ONNX Runtime's runtime.Model, or a GoMLX one).
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

// Server serves one model. Create it with New, run it with Serve (once).
type Server struct {
	cfg    Config
	pl     *predict.Pipeline // the inference steps (decode, preprocess, postprocess; the same for every version)
	models modelSlot         // the model served now (Reload swaps it)
	mcfg   spec.Config
	popt   preprocess.Options
	log    *slog.Logger
	met    *metrics
	b      *batcher
	h      http.Handler
	ready  atomic.Bool
	served atomic.Bool

	mem       *memBudget    // what requests may reserve (MemBudget less the base and RunMem)
	bodySlots chan struct{} // one per body being read (BodyReads)
	memBase   int64         // the process's RSS when New was called

	tensors  sync.Pool // *[]float32 of one image
	idPrefix string
	idSeq    atomic.Uint64

	reloadState
	certState
	tracer trace.Tracer
}

// New checks cfg (zero fields take the defaults) and the model's configuration and builds a
// Server for model. The caller keeps ownership of model and closes it after Serve returns.
func New(cfg Config, model predict.Predictor, log *slog.Logger) (*Server, error) {
	if model == nil {
		return nil, errors.New("server: no model")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pl, err := predict.NewPipeline(model, func(o *preprocess.Options) {
		o.MaxPixels = cfg.MaxPixels
		o.Draft = cfg.JPEGDraft
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	mcfg, popt := pl.Config(), pl.Options()
	var idb [4]byte
	_, _ = rand.Read(idb[:])
	s := &Server{cfg: cfg, pl: pl, mcfg: mcfg, popt: popt, log: log, idPrefix: hex.EncodeToString(idb[:])}
	if err := s.ReloadCredentials(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if n, err := strconv.Atoi(cfg.ModelVersion); err == nil {
		s.versionSeq = n
	}
	n := popt.Len()
	if s.cfg.RunMem == 0 {
		s.cfg.RunMem = int64(cfg.Workers) * int64(cfg.Batch) * 24 * int64(n) * 4
	}
	s.memBase, _ = ProcessMemory()
	// A tenth of what is left stays free for the garbage the Go runtime holds between
	// collections (Serve's soft memory limit keeps it small, not nil).
	share := (s.cfg.MemBudget - s.memBase - s.cfg.RunMem) / 10 * 9
	if minShare := 2*int64(n)*4 + maxPendingJSON + 64<<10; share < minShare {
		return nil, fmt.Errorf("server config: MemBudget %s leaves %s for requests after the process's %s and RunMem %s; want at least %s",
			mib(s.cfg.MemBudget), mib(share), mib(s.memBase), mib(s.cfg.RunMem), mib(minShare))
	}
	s.mem = newMemBudget(share)
	s.bodySlots = make(chan struct{}, cfg.BodyReads)
	s.tensors.New = func() any { v := make([]float32, n); return &v }
	s.met = newMetrics(func() float64 { return float64(s.b.pending.Load()) }, s.memGauges())
	s.models.cur.Store(newServed(model, cfg.ModelVersion, cfg.OwnModel, s.closedLog(cfg.ModelVersion)))
	s.setVersionMetric(cfg.ModelVersion)
	s.tracer = newTracer(cfg.TracerProvider)
	s.b = newBatcher(&s.models, mcfg, cfg, n, s.met, log)
	s.b.tracer = s.tracer
	s.routes()
	return s, nil
}

// Config returns the configuration in effect (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Handler returns the HTTP handler (routes, logging, metrics). Predictions need the batcher,
// which only Serve starts.
func (s *Server) Handler() http.Handler { return s.h }

// Serve serves HTTP on ln until ctx ends, then shuts down gracefully: it stops accepting
// connections, waits up to Config.ShutdownTimeout for in-flight requests (their model runs
// still happen), drains the batcher and returns nil. If they do not finish in time, the model
// runs are cancelled, the connections closed, and the error says so. ln is closed when Serve
// returns. Serve (or ServeAll) may be called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeAll(ctx, ln, nil)
}

// ServeAll is Serve with KServe v2 over gRPC on grpcLn too (nil: none); both share the
// batcher, admission, memory budget and metrics, and stop together. With a certificate
// (Config.TLSCertFile) both speak TLS.
func (s *Server) ServeAll(ctx context.Context, ln, grpcLn net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		if grpcLn != nil {
			_ = grpcLn.Close()
		}
		return errors.New("server: Serve called twice")
	}
	defer s.releaseModel()
	s.b.start(s.cfg.Workers)
	hs := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		// Requests must outlive ctx: shutdown lets them finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	defer s.setGoMemLimit()()
	errc := make(chan error, 1)
	if tc := s.tlsConfig("h2", "http/1.1"); tc != nil {
		hs.TLSConfig = tc
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	var gs *grpcRunning
	if grpcLn != nil {
		gs = s.startGRPC(grpcLn)
	}
	s.ready.Store(true)
	s.log.Info("serving", "addr", ln.Addr().String(), "grpc_addr", listenAddr(grpcLn), "tls", s.cert.Load() != nil, "auth", s.tokens.Load() != nil, "version", s.Version(), "batch", s.cfg.Batch, "max_delay", s.cfg.MaxDelay, "queue", s.cfg.Queue,
		"mem_budget_mib", s.cfg.MemBudget>>20, "requests_mib", s.mem.total>>20, "base_rss_mib", s.memBase>>20, "run_mem_mib", s.cfg.RunMem>>20)
	select {
	case err := <-errc:
		s.ready.Store(false)
		gs.stop(context.Background(), true)
		s.b.close()
		return fmt.Errorf("server: %w", err)
	case err := <-gs.errc():
		s.ready.Store(false)
		_ = hs.Close()
		<-errc
		s.b.close()
		return fmt.Errorf("server: grpc: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	gdone := make(chan struct{})
	go func() { defer close(gdone); gs.stop(sctx, false) }()
	err := hs.Shutdown(sctx)
	<-gdone
	if err == nil && sctx.Err() != nil {
		err = sctx.Err() // gRPC calls outlived the timeout
	}
	if err != nil {
		err = fmt.Errorf("server: shutdown: in-flight requests did not finish within %v: %w", s.cfg.ShutdownTimeout, err)
		_ = hs.Close()
		s.b.abort() // cancels the running model runs (ORT terminates them)
	}
	<-errc // http.ErrServerClosed
	s.b.close()
	s.log.Info("stopped")
	return err
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/predict", s.handlePredict)
	mux.HandleFunc("/v2", s.handleV2Server)
	mux.HandleFunc("/v2/health/live", s.handleLive)
	mux.HandleFunc("/v2/health/ready", s.handleReady)
	mux.HandleFunc("/v2/models/"+ModelName, s.handleV2Metadata)
	mux.HandleFunc("/v2/models/"+ModelName+"/ready", s.handleReady)
	mux.HandleFunc("/v2/models/"+ModelName+"/infer", s.handleInfer)
	mux.HandleFunc("/v2/models/"+ModelName+"/versions/{version}", s.handleV2MetadataVersion)
	mux.HandleFunc("/v2/models/"+ModelName+"/versions/{version}/infer", s.handleInferVersion)
	mux.HandleFunc("/v2/repository/index", s.handleRepoIndex)
	mux.HandleFunc("/v2/repository/models/{name}/load", s.handleRepoLoad)
	mux.HandleFunc("/v2/repository/models/{name}/unload", s.handleRepoUnload)
	mux.Handle("/metrics", methods(promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}), http.MethodGet, http.MethodHead))
	mux.HandleFunc("/", s.handleIndex)
	s.h = s.middleware(s.requireToken(mux))
}

// clientClosed is the status logged (nginx's convention) when the client went away first.
const clientClosed = 499

type ctxKey struct{}

// logger returns the request's logger (with its request id).
func logger(ctx context.Context, def *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return def
}

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		tctx, span := s.startHTTPSpan(r)
		defer span.End()
		id := r.Header.Get("X-Request-Id")
		if !validID.MatchString(id) {
			if id = traceID(span); id == "" || r.Header.Get("Traceparent") == "" {
				id = s.idPrefix + "-" + strconv.FormatUint(s.idSeq.Add(1), 10)
			}
		}
		w.Header().Set("X-Request-Id", id)
		log := s.log.With("request_id", id)
		r = r.WithContext(context.WithValue(tctx, ctxKey{}, log))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("handler panicked", "panic", fmt.Sprint(p))
				if sw.code == 0 {
					writeError(sw, http.StatusInternalServerError, "internal error")
				}
			}
			code := sw.code
			switch {
			case code == 0 && r.Context().Err() != nil:
				code = clientClosed
			case code == 0:
				code = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			dur := time.Since(start)
			span.SetName(r.Method + " " + route)
			span.SetAttributes(attribute.Int("http.response.status_code", code), attribute.String("request_id", id))
			if code >= 500 {
				span.SetStatus(otelcodes.Error, strconv.Itoa(code))
			}
			s.met.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			s.met.latency.WithLabelValues(route).Observe(dur.Seconds())
			lvl := slog.LevelInfo
			if code >= 500 && code != http.StatusServiceUnavailable {
				lvl = slog.LevelError
			}
			log.Log(r.Context(), lvl, "request", "method", r.Method, "path", r.URL.Path, "code", code,
				"bytes", sw.n, "ms", float64(dur.Microseconds())/1000, "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status code and body size.
type statusWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methods answers 405 (JSON, with Allow) to other methods.
func methods(h http.Handler, allowed ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow(w, r, allowed...) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

func allow(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: errtext.Fold(msg)})
}

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	if allow(w, r, http.MethodGet, http.MethodHead) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	}
}

// handleReady answers /v2/health/ready and /v2/models/artnet/ready: 200 while the server
// serves and can take one more request now; 503 (with the reason and Retry-After) while it
// starts or stops, and while it is saturated — the model queue full, every body-read slot
// taken, or the memory budget without room for one small request. A load balancer then
// sends new work elsewhere; liveness (/v2/health/live) stays 200, since a saturated server
// is not broken.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	if reason := s.notReady(); reason != "" {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "error": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

// notReady says why the server cannot take a request now ("" when it can).
func (s *Server) notReady() string {
	switch {
	case !s.ready.Load():
		return "not serving (starting or shutting down)"
	case s.models.cur.Load() == nil:
		return "model unloaded"
	case s.b.pending.Load() >= s.b.queue:
		return fmt.Sprintf("saturated: model queue full (%d requests)", s.b.queue)
	case len(s.bodySlots) >= cap(s.bodySlots):
		return fmt.Sprintf("saturated: all %d body-read slots taken", cap(s.bodySlots))
	case s.mem.total-s.mem.inUse() < s.smallRequest():
		return fmt.Sprintf("saturated: memory budget for requests (%s) in use", mib(s.mem.total))
	}
	return ""
}

// smallRequest is the memory of a small image request: its tensor twice and 1 MiB of body.
func (s *Server) smallRequest() int64 { return 2*int64(s.popt.Len())*4 + 1<<20 }

// setGoMemLimit sets Go's soft memory limit to the budget less what Go does not manage (ONNX
// Runtime's memory, measured as the RSS at New minus Go's own then, and RunMem), unless one
// is set already; the returned func restores it.
func (s *Server) setGoMemLimit() func() {
	if debug.SetMemoryLimit(-1) != math.MaxInt64 {
		return func() {}
	}
	goNow := goMemory()
	nonGo := max(s.memBase-goNow, 0) + s.cfg.RunMem
	limit := (s.cfg.MemBudget - nonGo) / 20 * 19 // 5% below: RSS also holds what Go has freed but not yet returned
	if limit <= 0 {
		return func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	s.log.Debug("Go memory limit", "mib", limit>>20)
	return func() { debug.SetMemoryLimit(prev) }
}

// goMemory is the memory the Go runtime has mapped and not released.
func goMemory() int64 {
	sm := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(sm)
	if sm[0].Value.Kind() != rtmetrics.KindUint64 || sm[1].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return int64(sm[0].Value.Uint64() - sm[1].Value.Uint64())
}
