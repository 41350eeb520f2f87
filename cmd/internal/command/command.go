// Package command holds the urfave/cli commands that both binaries carry — `serve` and
// `predict` — and the runtime flags they share, so that `artnet predict` and
// `artnet-serve predict` take the same flags, exit with the same codes and report Close errors
// the same way. It lives under cmd/ because only the binaries use it; the server and predict
// packages stay libraries without a CLI.
//
// It must not import GoMLX: the lean artnet-serve links it. The GoMLX runtime of `predict`
// (--runtime gomlx) is plugged in by the full binary through PredictOptions.OpenGoMLX.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/onnxrt"
)

// ExitError is an error with the exit status Main gives it (1 for any other error).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Main runs app with args, then shuts ONNX Runtime's environment down (after every model has
// been closed by its command). On an error it prints one line "NAME: message" on stderr and
// returns the exit status (ExitError's code, else 1); 0 on success.
func Main(ctx context.Context, app *cli.App, args []string, stderr io.Writer) int {
	app.ExitErrHandler = func(*cli.Context, error) {} // Main prints and exits
	err := app.RunContext(ctx, args)
	if serr := onnxrt.Shutdown(); serr != nil {
		err = errors.Join(err, serr)
	}
	if err == nil {
		return 0
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code != 0 {
		code = ee.Code
	}
	if msg := errtext.OneLine(err); msg != "" {
		fmt.Fprintln(stderr, app.Name+":", msg)
	}
	return code
}

// LogLevelFlag is the global --log-level flag; SetLogLevel (an App.Before) applies it.
func LogLevelFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"}
}

// SetLogLevel installs a text slog handler on stderr at --log-level.
func SetLogLevel(c *cli.Context) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("flag --log-level: %w", err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
	return nil
}

// EPLibFlag is --ep-lib NAME=PATH (repeatable): an ONNX Runtime plugin execution provider
// library for provider NAME (cuda, tensorrt), read by ProviderLibraries.
func EPLibFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "ep-lib", Usage: "ONNX Runtime plugin execution provider library `NAME=PATH` for --provider NAME (cuda, tensorrt; repeatable), e.g. cuda=third_party/onnxruntime-gpu/libonnxruntime_providers_cuda.so; default: libonnxruntime_providers_NAME.so beside the ORT library when the library lacks NAME"}
}

// ProviderLibraries reads --ep-lib into onnxrt.Options.ProviderLibraries (nil when not given).
func ProviderLibraries(c *cli.Context) (map[string]string, error) {
	var libs map[string]string
	for _, v := range c.StringSlice("ep-lib") {
		p, path, err := onnxrt.ParseProviderLibrary(v)
		if err != nil {
			return nil, fmt.Errorf("flag --ep-lib: %w", err)
		}
		if old, ok := libs[p]; ok && old != path {
			return nil, fmt.Errorf("flag --ep-lib: %s given twice (%s, %s)", p, old, path)
		}
		if libs == nil {
			libs = map[string]string{}
		}
		libs[p] = path
	}
	return libs, nil
}

// RuntimeFlags are the flags OpenModel reads: --model, --provider, --ort-lib, --ep-lib, --threads,
// --ort-spin.
func RuntimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "model", Usage: "the exported model `FILE.onnx` (artnet export --onnx); default: the built-in model (" + defaultmodel.Name + ")"},
		&cli.StringFlag{Name: "provider", Value: "cpu", Usage: "ONNX Runtime execution providers in order, comma-separated: cpu, cuda, tensorrt; a later one is a fallback only when listed (cuda,cpu)"},
		&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime, then system folders)"},
		EPLibFlag(),
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: ORT's default)"},
		&cli.BoolFlag{Name: "ort-spin", Value: true, Usage: "let ONNX Runtime's idle threads spin-wait (its default); --ort-spin=false makes them sleep, which leaves those cycles to decoding in serve"},
	}
}

// OpenModel opens the --model file (the built-in default model when --model is not given) in
// ONNX Runtime with the runtime flags of RuntimeFlags.
func OpenModel(c *cli.Context) (*onnxrt.Model, error) {
	o, err := ortOptions(c)
	if err != nil {
		return nil, err
	}
	if c.String("model") == "" {
		slog.Debug("no --model: using the built-in default model", "model", defaultmodel.Name)
		return onnxrt.OpenBytes(defaultmodel.Name, defaultmodel.Bytes(), o)
	}
	return onnxrt.Open(c.String("model"), o)
}

// ortOptions reads the runtime flags into ONNX Runtime options.
func ortOptions(c *cli.Context) (onnxrt.Options, error) {
	if c.Int("threads") < 0 {
		return onnxrt.Options{}, fmt.Errorf("flag --threads: must be >= 0, got %d", c.Int("threads"))
	}
	var providers []string
	for _, p := range strings.Split(c.String("provider"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			providers = append(providers, p)
		}
	}
	libs, err := ProviderLibraries(c)
	if err != nil {
		return onnxrt.Options{}, err
	}
	return onnxrt.Options{LibraryPath: c.String("ort-lib"), Providers: providers, IntraOpThreads: c.Int("threads"),
		NoSpin: !c.Bool("ort-spin"), ProviderLibraries: libs}, nil
}

// closeJoin closes c and joins its error to err: a failed Close is never dropped.
func closeJoin(err error, c io.Closer) error {
	return errors.Join(err, c.Close())
}
