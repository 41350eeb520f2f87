// Package onnxrt serves exported artnet models with ONNX Runtime (1.30.0, loaded at run time
// through github.com/yalue/onnxruntime_go).
//
// It finds the shared library (FindLibrary: flag, $ONNXRUNTIME_SHARED_LIBRARY_PATH, the
// project's third_party/onnxruntime, system folders), initializes the process-wide ORT
// environment once (Init, Shutdown), checks that an ONNX file is an artnet model before
// loading it (spec.Inspect and ModelInfo.Validate: the ONNX contract lives in models/spec, so
// the exporter makes the same check without ORT), and runs
// batches on the CPU, CUDA or TensorRT execution providers with explicit fallback. GPU
// providers come from a CUDA-enabled core library or from plugin execution provider libraries
// (RegisterProviderLibrary, Options.ProviderLibraries, or found beside the core: plugin.go),
// attached through the ORT C API functions onnxruntime_go does not wrap (ortapi.go).
//
// The package name shadows the standard library's runtime; import it under an alias, e.g.
//
//	import "github.com/artnet/artnet/onnxrt"
package onnxrt
