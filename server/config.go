package server

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Defaults of Config's zero fields.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultBatch             = 32
	DefaultMaxDelay          = 5 * time.Millisecond
	DefaultQueueFactor       = 8 // Queue = DefaultQueueFactor × Batch
	DefaultMaxBodyBytes      = 32 << 20
	DefaultMaxPixels         = 50_000_000
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultTopK              = 5
	DefaultMaxInferBatch     = 64
	DefaultBodyReads         = 1024
	DefaultMinBodyRate       = 4 << 10 // bytes per second
	DefaultMinBodyRateGrace  = 5 * time.Second
	DefaultAdmitWait         = 2 * time.Second
	ModelName                = "artnet" // the model's name in the KServe v2 routes
)

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Batch is the most images the batcher collects from several requests into one model run:
	// requests are added while they fit. A single request larger than Batch — a v2 infer
	// request of up to MaxInferBatch images — is not split: it runs as one batch of its own.
	// MaxDelay is how long the first request of a batch waits for others (it stops waiting
	// early when no other request is on its way — reading its body or decoding — and none is
	// queued; slow uploads thus cost a waiting batch at most MaxDelay, never a queue slot).
	Batch    int
	MaxDelay time.Duration
	// Workers is how many model runs may be in flight at once (default 1: one run uses all
	// of ORT's intra-op threads).
	Workers int
	// Queue bounds the requests whose input is decoded and ready but not yet in a model run;
	// one more is answered 503 with Retry-After. A request takes its slot only once its body
	// has been read and decoded, so slow uploads do not hold slots.
	Queue int
	// BodyReads bounds the request bodies being read at once (default 1024); a request that
	// finds them all taken waits up to AdmitWait, then gets 503 with Retry-After. A body must
	// arrive at MinBodyRate bytes per second at least (default 4 KiB/s), counted from the
	// start after a MinBodyRateGrace (default 5 s) head start; a slower client is cut off with
	// 408. MinBodyRate < 0 disables the check.
	BodyReads        int
	MinBodyRate      int64
	MinBodyRateGrace time.Duration
	// MemBudget is the memory of the whole process, in bytes (default DefaultMemBudget(): a
	// share of the machine's available memory or cgroup limit). What the process holds when
	// New is called (the model, ONNX Runtime) and RunMem are set aside, and a tenth of the
	// rest for the Go runtime's garbage; the remainder is what requests may reserve at once: each reserves its body as it arrives, the worst case of
	// decoding its image (from the header: width × height × bytes per pixel plus the RGBA,
	// rotation and resize buffers) before decoding, its v2 tensor before parsing it, and its
	// attention overlay. A request that cannot reserve waits up to AdmitWait, then gets 503
	// with Retry-After; one that needs more than the whole share gets 413. Serve also sets
	// Go's soft memory limit (debug.SetMemoryLimit) to the budget minus the memory Go does not
	// manage, unless GOMEMLIMIT or an earlier call set one.
	MemBudget int64
	// RunMem is set aside for the model runs (ONNX Runtime's activations and the batch
	// buffers). Default: Workers × Batch × 24 × one input image (float32); raise it for large
	// models at large batches (watch artnet_process_peak_rss_bytes).
	RunMem    int64
	AdmitWait time.Duration
	// MaxBodyBytes caps a request body (413 beyond); MaxPixels caps an image's declared
	// width×height, checked on its header before decoding (413 beyond).
	MaxBodyBytes int64
	MaxPixels    int
	// JPEGDraft decodes large JPEGs at a DCT-domain scale (preprocess.Options.Draft): less CPU
	// per photo, pixels a little different from torchvision's. Off by default.
	JPEGDraft bool
	// HTTP timeouts (see net/http.Server) and how long Serve waits for in-flight requests
	// when its context ends.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	// TopK is /v1/predict's default ?topk=.
	TopK int
	// MaxInferBatch caps the batch dimension of a /v2/models/artnet/infer request.
	MaxInferBatch int

	// Loader loads the model again for Reload (SIGHUP, POST /v2/repository/models/artnet/load);
	// nil: no reload. ModelVersion is the version of the model given to New (default "1");
	// models loaded without a version of their own are numbered on from it.
	Loader       Loader
	ModelVersion string
	// OwnModel makes the Server close the model given to New once it is replaced (or unloaded)
	// and idle, or when Serve returns; otherwise the caller closes it after Serve. Models that
	// Reload loads are always the Server's.
	OwnModel bool
	// TLSCertFile and TLSKeyFile (PEM) serve HTTPS and gRPC over TLS; ReloadCredentials reads
	// them again. AuthTokenFile (one token per line) requires a bearer token on everything
	// but liveness and readiness, and on /metrics unless MetricsPublic.
	TLSCertFile   string
	TLSKeyFile    string
	AuthTokenFile string
	MetricsPublic bool
	// TracerProvider records OpenTelemetry spans per request (tracing.go); nil: none.
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Batch, DefaultBatch)
	defD(&c.MaxDelay, DefaultMaxDelay)
	def(&c.Workers, 1)
	def(&c.Queue, DefaultQueueFactor*max(c.Batch, 1))
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	def(&c.MaxPixels, DefaultMaxPixels)
	defD(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	defD(&c.ReadTimeout, DefaultReadTimeout)
	defD(&c.WriteTimeout, DefaultWriteTimeout)
	defD(&c.IdleTimeout, DefaultIdleTimeout)
	defD(&c.ShutdownTimeout, DefaultShutdownTimeout)
	def(&c.TopK, DefaultTopK)
	def(&c.MaxInferBatch, DefaultMaxInferBatch)
	if c.ModelVersion == "" {
		c.ModelVersion = "1"
	}
	def(&c.BodyReads, DefaultBodyReads)
	if c.MinBodyRate == 0 {
		c.MinBodyRate = DefaultMinBodyRate
	}
	defD(&c.MinBodyRateGrace, DefaultMinBodyRateGrace)
	defD(&c.AdmitWait, DefaultAdmitWait)
	if c.MemBudget == 0 {
		c.MemBudget = DefaultMemBudget()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Batch < 1:
		return fmt.Errorf("server config: Batch must be >= 1, got %d", c.Batch)
	case c.MaxDelay < 0:
		return fmt.Errorf("server config: MaxDelay must be >= 0, got %v", c.MaxDelay)
	case c.Workers < 1:
		return fmt.Errorf("server config: Workers must be >= 1, got %d", c.Workers)
	case c.Queue < 1:
		return fmt.Errorf("server config: Queue must be >= 1, got %d", c.Queue)
	case c.MaxBodyBytes < 1:
		return fmt.Errorf("server config: MaxBodyBytes must be >= 1, got %d", c.MaxBodyBytes)
	case c.MaxPixels < 1:
		return fmt.Errorf("server config: MaxPixels must be >= 1, got %d", c.MaxPixels)
	case c.TopK < 1:
		return fmt.Errorf("server config: TopK must be >= 1, got %d", c.TopK)
	case c.MaxInferBatch < 1:
		return fmt.Errorf("server config: MaxInferBatch must be >= 1, got %d", c.MaxInferBatch)
	case c.BodyReads < 1:
		return fmt.Errorf("server config: BodyReads must be >= 1, got %d", c.BodyReads)
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return fmt.Errorf("server config: TLSCertFile and TLSKeyFile go together, got %q and %q", c.TLSCertFile, c.TLSKeyFile)
	case !validID.MatchString(c.ModelVersion):
		return fmt.Errorf("server config: ModelVersion %q: want 1 to 64 of A-Z a-z 0-9 . _ -", c.ModelVersion)
	case c.MemBudget < 0 || c.RunMem < 0:
		return fmt.Errorf("server config: MemBudget and RunMem must be >= 0, got %d and %d", c.MemBudget, c.RunMem)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}, {"IdleTimeout", c.IdleTimeout}, {"ShutdownTimeout", c.ShutdownTimeout}, {"MinBodyRateGrace", c.MinBodyRateGrace}, {"AdmitWait", c.AdmitWait}} {
		if d.v < 0 {
			return fmt.Errorf("server config: %s must be >= 0, got %v", d.name, d.v)
		}
	}
	return nil
}
