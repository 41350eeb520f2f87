// Command ortapigen writes onnxrt/ortapi_index.go: the indexes, in ONNX Runtime's OrtApiBase
// and OrtApi tables of function pointers, of the functions onnxrt/ calls itself (declared in
// onnxrt/ortapi.h), the ORT_API_VERSION they come from, and ORT's OrtHardwareDeviceType values.
//
// It takes them from the onnxruntime_c_api.h that github.com/yalue/onnxruntime_go ships (the
// module's folder from `go list -m`), by compiling a small C program with the system C compiler
// ($CC, default cc) that includes that header and onnxrt/ortapi.h, checks every signature of
// ortapi.h against the header's (__builtin_types_compatible_p) and prints offsetof/sizeof(void*).
// ORT only ever appends to these tables (its ABI promise), so indexes from one header are valid
// for every later library. Run from onnxrt/ (go generate does):
//
//	go run ./internal/ortapigen -o ortapi_index.go
//
// With -o - it writes to stdout (TestORTAPIIndexIsGenerated compares that with the file).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/artnet/artnet/internal/atomicfile"
)

// module is the Go module whose copy of onnxruntime_c_api.h is read.
const module = "github.com/yalue/onnxruntime_go"

// functions are the tables' members onnxrt/ calls: table, then name. Each has an
// artnet_<name>_fn type in ortapi.h.
var functions = [][2]string{
	{"OrtApiBase", "GetApi"},
	{"OrtApi", "GetErrorMessage"},
	{"OrtApi", "ReleaseStatus"},
	{"OrtApi", "GetEpDevices"},
	{"OrtApi", "SessionOptionsAppendExecutionProvider_V2"},
	{"OrtApi", "EpDevice_EpName"},
	{"OrtApi", "EpDevice_EpVendor"},
	{"OrtApi", "EpDevice_Device"},
	{"OrtApi", "HardwareDevice_Type"},
	{"OrtApi", "HardwareDevice_VendorId"},
	{"OrtApi", "HardwareDevice_Vendor"},
	{"OrtApi", "HardwareDevice_DeviceId"},
}

// enums are the constants copied as Go constants: C name, Go name.
var enums = [][2]string{
	{"OrtHardwareDeviceType_CPU", "hardwareCPU"},
	{"OrtHardwareDeviceType_GPU", "hardwareGPU"},
	{"OrtHardwareDeviceType_NPU", "hardwareNPU"},
}

func main() {
	out := flag.String("o", "ortapi_index.go", "output file (- for stdout)")
	flag.Parse()
	src, err := generate(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "ortapigen:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(src)
	} else {
		err = atomicfile.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ortapigen:", err)
		os.Exit(1)
	}
}

func generate(ctx context.Context) ([]byte, error) {
	b, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", module).Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m %s: %w", module, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil, fmt.Errorf("go list -m %s: unexpected output %q", module, b)
	}
	modDir, version := f[0], f[1]
	if _, err := os.Stat(filepath.Join(modDir, "onnxruntime_c_api.h")); err != nil {
		return nil, fmt.Errorf("%s %s: %w", module, version, err)
	}
	here, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(here, "ortapi.h")); err != nil {
		return nil, fmt.Errorf("run from onnxrt/ (no ortapi.h here): %w", err)
	}
	tmp, err := os.MkdirTemp("", "ortapigen")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var c strings.Builder
	c.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include \"onnxruntime_c_api.h\"\n#include \"ortapi.h\"\n\n")
	for _, fn := range functions {
		fmt.Fprintf(&c, "_Static_assert(__builtin_types_compatible_p(__typeof__(((%[1]s*)0)->%[2]s), artnet_%[2]s_fn), \"ortapi.h: artnet_%[2]s_fn differs from %[1]s.%[2]s in onnxruntime_c_api.h\");\n", fn[0], fn[1])
		fmt.Fprintf(&c, "_Static_assert(offsetof(%[1]s, %[2]s) %% sizeof(void*) == 0, \"%[1]s.%[2]s is not in a pointer slot\");\n", fn[0], fn[1])
	}
	c.WriteString("\nint main(void) {\n  printf(\"version %d\\n\", ORT_API_VERSION);\n")
	for _, fn := range functions {
		fmt.Fprintf(&c, "  printf(\"%[1]s.%[2]s %%zu\\n\", offsetof(%[1]s, %[2]s) / sizeof(void*));\n", fn[0], fn[1])
	}
	for _, e := range enums {
		fmt.Fprintf(&c, "  printf(\"%[1]s %%d\\n\", (int)%[1]s);\n", e[0])
	}
	c.WriteString("  return 0;\n}\n")
	cFile, exe := filepath.Join(tmp, "ortapi.c"), filepath.Join(tmp, "ortapi")
	if err := os.WriteFile(cFile, []byte(c.String()), 0o644); err != nil {
		return nil, err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, cc, "-std=gnu11", "-Werror", "-I", modDir, "-I", here, "-o", exe, cFile)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s with %s's onnxruntime_c_api.h: %w: %s", cc, module, err, strings.TrimSpace(stderr.String()))
	}
	res, err := exec.CommandContext(ctx, exe).Output()
	if err != nil {
		return nil, fmt.Errorf("run the offset program: %w", err)
	}
	vals := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(res)), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			vals[k] = v
		}
	}

	var g strings.Builder
	fmt.Fprintf(&g, "// Code generated by `go run ./internal/ortapigen` from onnxruntime_c_api.h of %s %s; DO NOT EDIT.\n\n", module, version)
	g.WriteString("package onnxrt\n\n")
	fmt.Fprintf(&g, "// ortAPIVersion is the header's ORT_API_VERSION: the OrtApi version onnxrt/ asks the library for.\nconst ortAPIVersion = %s\n\n", vals["version"])
	g.WriteString("// Indexes of the functions of ortapi.h in ORT's tables of function pointers.\nconst (\n")
	for _, fn := range functions {
		fmt.Fprintf(&g, "\tidx%s = %s // %s.%s\n", fn[1], vals[fn[0]+"."+fn[1]], fn[0], fn[1])
	}
	g.WriteString(")\n\n// OrtHardwareDeviceType values.\nconst (\n")
	for _, e := range enums {
		fmt.Fprintf(&g, "\t%s = %s // %s\n", e[1], vals[e[0]], e[0])
	}
	g.WriteString(")\n")
	return format.Source([]byte(g.String()))
}
