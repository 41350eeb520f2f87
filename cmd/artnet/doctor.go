package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/cmd/internal/command"
	artgraph "github.com/artnet/artnet/graph"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/preprocess"
	ortrt "github.com/artnet/artnet/runtime"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "report which ONNX Runtime library, execution providers and GoMLX backends work here, and how to fix what is missing",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ort-lib", Usage: "path of libonnxruntime.so to check instead of the default search"},
		},
		Action: func(c *cli.Context) error {
			if problems := doctor(c.App.Writer, c.String("ort-lib")); problems > 0 {
				return &command.ExitError{Code: 1, Msg: fmt.Sprintf("doctor: %d problem(s) found", problems)}
			}
			return nil
		},
	}
}

// doctor prints the report and returns how many required pieces are missing. Optional pieces
// (GPU providers, the xla backend, libjpeg-turbo: image/jpeg is the fallback) are reported but
// not counted.
func doctor(w io.Writer, ortLib string) (problems int) {
	fmt.Fprintln(w, "ONNX Runtime (serving, export parity):")
	path, source, err := ortrt.FindLibrary(ortLib)
	switch {
	case err != nil:
		problems++
		fmt.Fprintf(w, "  library:   MISSING — %v\n", err)
		fmt.Fprintln(w, "  fix:       make ort   (scripts/setup-ort.sh: ONNX Runtime 1.30.0 from npm onnxruntime-node)")
	default:
		fmt.Fprintf(w, "  library:   %s (found via %s)\n", path, source)
		if err := ortrt.Init(path); err != nil {
			problems++
			fmt.Fprintf(w, "  load:      FAILED — %v\n", err)
			break
		}
		fmt.Fprintf(w, "  version:   %s\n", ortrt.Version())
		provs, err := ortrt.AvailableProviders()
		if err != nil {
			problems++
			fmt.Fprintf(w, "  providers: FAILED — %v\n", err)
			break
		}
		fmt.Fprintf(w, "  providers: %v\n", provs)
		have := map[string]bool{}
		for _, p := range provs {
			have[p] = true
		}
		if !have[ortrt.CUDA] {
			fmt.Fprintln(w, "  cuda:      not available (optional) — needs an NVIDIA GPU, CUDA 13 + cuDNN 9 and ONNX Runtime's CUDA provider library (libonnxruntime_providers_cuda.so, e.g. npm com.github.asus4.onnxruntime.linux-x64-gpu) beside the ORT library; see README 'GPU'")
		}
		if !have[ortrt.TensorRT] {
			fmt.Fprintln(w, "  tensorrt:  not available (optional) — needs TensorRT 10 and libonnxruntime_providers_tensorrt.so beside the ORT library; see README 'GPU'")
		}
	}
	fmt.Fprintln(w, "Image decoding (training and serving):")
	fmt.Fprintf(w, "  jpeg:      %s\n", preprocess.JPEGDecoder())
	fmt.Fprintln(w, "GoMLX backends (training, GoMLX inference):")
	avail := artgraph.Available()
	names := make([]string, 0, len(avail))
	for n := range avail {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := avail[n]; err != nil {
			if n == artgraph.GoBackendName {
				problems++
			}
			fmt.Fprintf(w, "  %-9s  not available — %s\n", n+":", errtext.OneLine(err))
			continue
		}
		fmt.Fprintf(w, "  %-9s  ok\n", n+":")
	}
	return problems
}
