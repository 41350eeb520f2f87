package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/preprocess"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "report which ONNX Runtime library, execution providers and GoMLX backends work here, and how to fix what is missing",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so to check instead of the default search"},
			command.EPLibFlag(),
		},
		Action: func(c *cli.Context) error {
			libs, err := command.ProviderLibraries(c)
			if err != nil {
				return err
			}
			if problems := doctor(c.App.Writer, c.String("ort-lib"), libs); problems > 0 {
				return &command.ExitError{Code: 1, Msg: fmt.Sprintf("doctor: %d problem(s) found", problems)}
			}
			return nil
		},
	}
}

// doctor prints the report and returns how many required pieces are missing. Optional pieces
// (GPU providers, the xla backend, libjpeg-turbo: image/jpeg is the fallback) are reported but
// not counted; so is a plugin library (--ep-lib) that fails to register, which is shown.
func doctor(w io.Writer, ortLib string, epLibs map[string]string) (problems int) {
	fmt.Fprintln(w, "ONNX Runtime (serving, export parity):")
	path, source, err := onnxrt.FindLibrary(ortLib)
	switch {
	case err != nil:
		problems++
		fmt.Fprintf(w, "  library:   MISSING — %v\n", err)
		fmt.Fprintln(w, "  fix:       make ort   (scripts/setup-ort.sh: ONNX Runtime 1.30.0 from npm onnxruntime-node)")
	default:
		fmt.Fprintf(w, "  library:   %s (found via %s)\n", path, source)
		if err := onnxrt.Init(path); err != nil {
			problems++
			fmt.Fprintf(w, "  load:      FAILED — %v\n", err)
			break
		}
		fmt.Fprintf(w, "  version:   %s\n", onnxrt.Version())
		for _, p := range slices.Sorted(maps.Keys(epLibs)) {
			if err := onnxrt.RegisterProviderLibrary(p, epLibs[p]); err != nil {
				fmt.Fprintf(w, "  ep-lib:    FAILED — %s\n", errtext.OneLine(err))
			}
		}
		probe, err := onnxrt.ProbeProviders()
		if err != nil {
			problems++
			fmt.Fprintf(w, "  providers: FAILED — %v\n", err)
			break
		}
		var provs []string
		for _, p := range onnxrt.KnownProviders {
			if probe[p] == nil {
				provs = append(provs, p)
			}
		}
		fmt.Fprintf(w, "  providers: %v\n", provs)
		libs := onnxrt.ProviderLibraries()
		for _, p := range slices.Sorted(maps.Keys(libs)) {
			fmt.Fprintf(w, "  ep-lib:    %s = %s (registered plugin library)\n", p, libs[p])
		}
		if devs, err := onnxrt.EPDevices(); err != nil {
			fmt.Fprintf(w, "  ep devices: FAILED — %s\n", errtext.OneLine(err))
		} else {
			for _, d := range devs {
				fmt.Fprintf(w, "  ep device: %s\n", d)
			}
		}
		needs := map[string]string{
			onnxrt.CUDA:     "needs an NVIDIA GPU, CUDA 13 + cuDNN 9 and ONNX Runtime's CUDA provider library (libonnxruntime_providers_cuda.so, e.g. npm com.github.asus4.onnxruntime.linux-x64-gpu, beside the ORT library or given with --ep-lib cuda=PATH)",
			onnxrt.TensorRT: "needs TensorRT 10 and libonnxruntime_providers_tensorrt.so beside the ORT library (or --ep-lib tensorrt=PATH)",
		}
		for _, p := range []string{onnxrt.CUDA, onnxrt.TensorRT} {
			if err := probe[p]; err != nil {
				fmt.Fprintf(w, "  %-9s  not available (optional) — %s; see README 'GPU'\n", p+":", needs[p])
				fmt.Fprintf(w, "             why: %s\n", errtext.OneLine(err))
			}
		}
	}
	fmt.Fprintln(w, "Image decoding (training and serving):")
	fmt.Fprintf(w, "  jpeg:      %s\n", preprocess.JPEGDecoder())
	nativeLibraries(w)
	fmt.Fprintln(w, "GoMLX backends (training, GoMLX inference):")
	avail := engine.Available()
	names := make([]string, 0, len(avail))
	for n := range avail {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := avail[n]; err != nil {
			if n == engine.GoBackendName {
				problems++
			}
			fmt.Fprintf(w, "  %-9s  not available — %s\n", n+":", errtext.OneLine(err))
			continue
		}
		fmt.Fprintf(w, "  %-9s  ok\n", n+":")
	}
	doctorEnv(w)
	return problems
}

// nativeLibraries lists every optional native library: found, or missing and how to add it.
// None is counted as a problem: each has a pure-Go fallback or serves an optional provider.
// ONNX Runtime (required) and its GPU providers are reported above; PJRT (GoMLX's xla backends)
// with the backends below.
func nativeLibraries(w io.Writer) {
	fmt.Fprintln(w, "Optional native libraries:")
	line := func(name string, err error, found, how string) {
		if err == nil {
			fmt.Fprintf(w, "  %-14s found — %s\n", name+":", found)
			return
		}
		fmt.Fprintf(w, "  %-14s missing — %s; to add: %s\n", name+":", errtext.OneLine(err), how)
	}
	blas := engine.DotGeneralKernelError()
	line("OpenBLAS", blas, "training's matrix products (engine/internal/kernels, cgo)",
		"apt-get install libopenblas-dev, then make build (without it: the pure-Go loop, -tags=noblas)")
	var turbo error
	if !preprocess.TurboJPEG() {
		turbo = errors.New(preprocess.JPEGDecoder())
	}
	line("libjpeg-turbo", turbo, preprocess.JPEGDecoder(),
		"apt-get install libturbojpeg0 (no rebuild: opened with dlopen)")
}
