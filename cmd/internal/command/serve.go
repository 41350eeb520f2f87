package command

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/server"
)

// Serve is the `serve` command: it opens the model in ONNX Runtime, serves it on --addr until
// SIGINT/SIGTERM (or the cli context ends), then closes the model.
func Serve() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve an exported ONNX model over HTTP (/v1/predict, KServe v2, /metrics, a web page at /)",
		Flags: append(RuntimeFlags(),
			&cli.StringFlag{Name: "addr", Value: server.DefaultAddr, Usage: "listen address"},
			&cli.IntFlag{Name: "batch", Value: server.DefaultBatch, Usage: "largest batch of images per model run"},
			&cli.DurationFlag{Name: "max-delay", Value: server.DefaultMaxDelay, Usage: "longest a request waits for a batch to fill"},
			&cli.IntFlag{Name: "queue", Usage: "requests admitted but not yet running before 503 (0: 8 × batch)"},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "model runs in flight at once"},
			&cli.Int64Flag{Name: "max-body", Value: server.DefaultMaxBodyBytes, Usage: "largest request body in bytes"},
			&cli.IntFlag{Name: "max-pixels", Value: server.DefaultMaxPixels, Usage: "largest image (width × height, from its header) accepted"},
			&cli.BoolFlag{Name: "jpeg-draft", Usage: "decode JPEGs at least twice the model's resize size at 1/2, 1/4 or 1/8 scale in the DCT domain (Pillow's Image.draft): less CPU per photo, pixels ~2 levels from torchvision's"},
			&cli.StringFlag{Name: "mem-budget", Usage: "memory of the whole server (e.g. 4GiB); requests reserve their bodies, decoded images and tensors from it and wait or get 503 when it is spent (default: half of MemAvailable, or 3/4 of the cgroup limit if smaller)"},
			&cli.StringFlag{Name: "run-mem", Usage: "memory set aside for model runs within --mem-budget (default: workers × batch × 24 input images)"},
			&cli.IntFlag{Name: "body-reads", Value: server.DefaultBodyReads, Usage: "request bodies read at once; more wait up to --admit-wait, then 503"},
			&cli.StringFlag{Name: "min-body-rate", Value: "4KiB", Usage: "slowest body transfer per second accepted after a 5 s head start (408 below; 0: no minimum)"},
			&cli.DurationFlag{Name: "admit-wait", Value: server.DefaultAdmitWait, Usage: "longest a request waits for memory or a body-read slot before 503"},
			&cli.StringFlag{Name: "grpc-addr", Usage: "also serve KServe v2 over gRPC (inference.GRPCInferenceService) on `HOST:PORT` (off when empty)"},
			&cli.StringFlag{Name: "model-repo", Usage: "serve the newest version of a Triton-style repository `DIR`/artnet/<version>/model.onnx (instead of --model); SIGHUP or POST /v2/repository/models/artnet/load loads the newest again"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS and gRPC over TLS with this PEM certificate `FILE` (with --tls-key; read again on SIGHUP)"},
			&cli.StringFlag{Name: "tls-key", Usage: "the PEM private key `FILE` of --tls-cert"},
			&cli.StringFlag{Name: "auth-token-file", Usage: "require a bearer token from this `FILE` (one per line; read again on SIGHUP) on everything but /v2/health/* and gRPC ServerLive/ServerReady"},
			&cli.BoolFlag{Name: "metrics-public", Usage: "serve /metrics without a token when --auth-token-file is set"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("serve: unexpected arguments %q", c.Args().Slice())
			}
			cfg := server.Config{
				Batch: c.Int("batch"), MaxDelay: c.Duration("max-delay"), Queue: c.Int("queue"), Workers: c.Int("workers"),
				MaxBodyBytes: c.Int64("max-body"), MaxPixels: c.Int("max-pixels"), JPEGDraft: c.Bool("jpeg-draft"),
			}
			for _, f := range []struct {
				name string
				v    int64
			}{{"batch", int64(cfg.Batch)}, {"workers", int64(cfg.Workers)}, {"max-body", cfg.MaxBodyBytes}, {"max-pixels", int64(cfg.MaxPixels)}} {
				if f.v < 1 {
					return fmt.Errorf("flag --%s: must be >= 1, got %d", f.name, f.v)
				}
			}
			if cfg.Queue < 0 || cfg.MaxDelay < 0 {
				return fmt.Errorf("flags --queue and --max-delay: must be >= 0")
			}
			cfg.BodyReads, cfg.AdmitWait = c.Int("body-reads"), c.Duration("admit-wait")
			if cfg.BodyReads < 1 || cfg.AdmitWait <= 0 {
				return fmt.Errorf("flags --body-reads and --admit-wait: must be > 0")
			}
			var err error
			if cfg.MemBudget, err = byteFlag(c, "mem-budget"); err != nil {
				return err
			}
			if cfg.RunMem, err = byteFlag(c, "run-mem"); err != nil {
				return err
			}
			if cfg.MinBodyRate, err = byteFlag(c, "min-body-rate"); err != nil {
				return err
			}
			if cfg.MinBodyRate == 0 && c.IsSet("min-body-rate") {
				cfg.MinBodyRate = -1 // no minimum
			}
			cfg.TLSCertFile, cfg.TLSKeyFile = c.String("tls-cert"), c.String("tls-key")
			if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
				return fmt.Errorf("flags --tls-cert and --tls-key: give both or neither")
			}
			cfg.AuthTokenFile, cfg.MetricsPublic = c.String("auth-token-file"), c.Bool("metrics-public")
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, c, cfg, slog.Default())
		},
	}
}

// byteFlag parses a size flag such as 4GiB, 512MB or 1048576 (go-humanize); "" is 0.
func byteFlag(c *cli.Context, name string) (int64, error) {
	v := c.String(name)
	if v == "" {
		return 0, nil
	}
	n, err := humanize.ParseBytes(v)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("flag --%s: %q is not a size such as 4GiB or 512MB", name, v)
	}
	return int64(n), nil
}

// serve opens the model named by the runtime flags in c (or the newest of --model-repo), serves
// it on c's --addr (and --grpc-addr) until ctx ends, reloading it on SIGHUP; the server closes
// the models.
func serve(ctx context.Context, c *cli.Context, cfg server.Config, log *slog.Logger) error {
	loader, err := serveLoader(c)
	if err != nil {
		return err
	}
	var m predict.Predictor
	if loader != nil {
		var version string
		if m, version, err = loader(ctx); err != nil {
			return err
		}
		if version != "" {
			cfg.ModelVersion = version
		}
		cfg.Loader = loader
	} else if m, err = OpenModel(c); err != nil {
		return err
	}
	if om, ok := m.(*onnxrt.Model); ok {
		log.Info("model loaded", "model", om.Name(), "providers", om.Providers(), "ort", onnxrt.Version(), "variant", om.Config().Variant, "input", om.Config().ImageSize, "version", cfg.ModelVersion)
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return closeJoin(fmt.Errorf("serve: %w", err), m)
	}
	var gln net.Listener
	if a := c.String("grpc-addr"); a != "" {
		if gln, err = net.Listen("tcp", a); err != nil {
			_ = ln.Close()
			return closeJoin(fmt.Errorf("serve: --grpc-addr: %w", err), m)
		}
	}
	cfg.OwnModel = true
	tp, stopTracing, err := setupTracing(ctx)
	if err != nil {
		_ = ln.Close()
		if gln != nil {
			_ = gln.Close()
		}
		return closeJoin(err, m)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("flushing OpenTelemetry spans", "err", err)
		}
	}()
	cfg.TracerProvider = tp
	srv, err := server.New(cfg, m, log)
	if err != nil {
		_ = ln.Close()
		if gln != nil {
			_ = gln.Close()
		}
		return closeJoin(err, m)
	}
	stopHUP := reloadOnHUP(ctx, srv, log)
	defer stopHUP()
	return srv.ServeAll(ctx, ln, gln) // closes the models
}
