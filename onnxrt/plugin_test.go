package onnxrt_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// The plugin execution provider path (plugin.go, ortapi.go) is proven here with ORT's CPU EP
// device, which every ORT ≥ 1.22 lists; the npm GPU package's libraries are exercised where
// scripts/gpu-check.sh --fetch-ort-gpu has laid them out (their registration fails on a machine
// without CUDA, which is checked too).

func TestEPDevicesListsCPU(t *testing.T) {
	devs, err := onnxrt.EPDevices()
	if err != nil {
		t.Fatal(err)
	}
	var cpu *onnxrt.EPDevice
	for i, d := range devs {
		t.Logf("ORT %s EP device: %s", onnxrt.Version(), d)
		if d.EP == "CPUExecutionProvider" && d.Type == "cpu" {
			cpu = &devs[i]
		}
	}
	if cpu == nil {
		t.Fatalf("no CPUExecutionProvider cpu device among %v", devs)
	}
	if cpu.EPVendor == "" || !strings.Contains(cpu.String(), "CPUExecutionProvider") {
		t.Errorf("CPU EP device %+v: empty vendor or bad String", *cpu)
	}
}

func TestPluginPathCPUMatchesDefault(t *testing.T) {
	tiny := runtimetest.TinyModel(spec.Tiny())
	imgs := runtimetest.Images(3, spec.Tiny().ImageSize, 7)
	ref := runtimetest.Open(t, runtimetest.Model{Config: spec.Tiny()}, cpuOpts())
	want, err := ref.Run(context.Background(), imgs, 3)
	if err != nil {
		t.Fatal(err)
	}

	restore := onnxrt.ForcePluginPath("cpu")
	before := onnxrt.PluginAppends()
	m, err := onnxrt.OpenBytes("tiny-v2.onnx", tiny, cpuOpts())
	restore()
	if err != nil {
		t.Fatalf("CPU EP through SessionOptionsAppendExecutionProvider_V2: %v", err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}()
	if got := onnxrt.PluginAppends() - before; got != 1 {
		t.Fatalf("%d plugin-path appends, want 1 (the session did not go through V2)", got)
	}
	got, err := m.Run(context.Background(), imgs, 3)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range want.Probs {
		if d := maxDiff(got.Probs[name], p); d != 0 {
			t.Errorf("%s: V2 session differs from the default one by %g", name, d)
		}
	}
	if d := maxDiff(got.Attention, want.Attention); d != 0 {
		t.Errorf("attention: V2 session differs from the default one by %g", d)
	}

	// A device number the provider does not have is a one-line error naming the EP.
	restore = onnxrt.ForcePluginPath("cpu")
	o := cpuOpts()
	o.DeviceID = 5
	_, err = onnxrt.OpenBytes("tiny-v2.onnx", tiny, o)
	restore()
	if err == nil || !strings.Contains(err.Error(), "1 cpu device(s) of CPUExecutionProvider, device 5 wanted") || strings.Contains(err.Error(), "\n") {
		t.Errorf("device 5 of the CPU EP: err %v", err)
	}
}

func TestRegisterProviderLibraryErrors(t *testing.T) {
	tmp := t.TempDir()
	notELF := filepath.Join(tmp, "libonnxruntime_providers_cuda.so")
	if err := os.WriteFile(notELF, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, provider, path string
		want                 []string
	}{
		{"missing", "cuda", filepath.Join(tmp, "missing.so"), []string{"no such file"}},
		{"not a shared library", "cuda", notELF, nil},
		// The core library loads but exports no CreateEpFactories: not a plugin EP.
		{"not a plugin EP", "tensorrt", onnxrt.LibraryPath(), []string{"does not export CreateEpFactories"}},
		{"unknown provider", "rocm", notELF, []string{`provider rocm: plugin library`, `"rocm" is not one of cuda, tensorrt`}},
	}
	for _, c := range cases {
		err := onnxrt.RegisterProviderLibrary(c.provider, c.path)
		if err == nil {
			t.Errorf("%s: registered", c.name)
			continue
		}
		msg := err.Error()
		t.Logf("%s: %s", c.name, msg)
		if !strings.Contains(msg, c.path) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q does not name %s on one line", c.name, msg, c.path)
		}
		if !strings.Contains(msg, "provider "+c.provider+": ") {
			t.Errorf("%s: error %q does not name the provider", c.name, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q lacks %q", c.name, msg, w)
			}
		}
		if strings.HasSuffix(msg, c.path) || strings.HasSuffix(msg, c.path+":") {
			t.Errorf("%s: error %q gives no cause", c.name, msg)
		}
	}
	if libs := onnxrt.ProviderLibraries(); len(libs) != 0 {
		t.Errorf("failed registrations left %v registered", libs)
	}
	// Through Options, as --ep-lib does: the open fails with the same one-line error.
	o := cpuOpts()
	o.Providers = []string{"cuda", "cpu"}
	o.ProviderLibraries = map[string]string{"cuda": notELF}
	_, err := onnxrt.OpenBytes("tiny.onnx", runtimetest.TinyModel(spec.Tiny()), o)
	if err == nil || !strings.Contains(err.Error(), "tiny.onnx") || !strings.Contains(err.Error(), notELF) || strings.Contains(err.Error(), "\n") {
		t.Errorf("Options.ProviderLibraries with a bad library: err %v", err)
	}
}

// TestRegisterEmptyPluginLibrary registers testdata/emptyep.c (a plugin EP library with no
// factory, compiled here): registration, the same library again, another one, a session that
// finds no device, and unregistration.
func TestRegisterEmptyPluginLibrary(t *testing.T) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("no C compiler %q: install one (or set $CC) to build testdata/emptyep.c", cc)
	}
	lib := filepath.Join(t.TempDir(), "libemptyep.so")
	if out, err := exec.CommandContext(t.Context(), cc, "-shared", "-fPIC", "-o", lib, "testdata/emptyep.c").CombinedOutput(); err != nil {
		t.Fatalf("%s testdata/emptyep.c: %v: %s", cc, err, out)
	}
	if err := onnxrt.RegisterProviderLibrary("cuda", lib); err != nil {
		t.Fatalf("register: %v", err)
	}
	t.Cleanup(func() {
		if err := onnxrt.UnregisterProviderLibrary("cuda"); err != nil {
			t.Error(err)
		}
	})
	if got := onnxrt.ProviderLibraries(); got["cuda"] != lib {
		t.Fatalf("registered libraries %v, want cuda=%s", got, lib)
	}
	if err := onnxrt.RegisterProviderLibrary("cuda", lib); err != nil {
		t.Errorf("registering the same library again: %v", err)
	}
	other := filepath.Join(filepath.Dir(lib), "other.so")
	if err := onnxrt.RegisterProviderLibrary("CUDA", other); err == nil || !strings.Contains(err.Error(), "already registered") || !strings.Contains(err.Error(), lib) {
		t.Errorf("another library for cuda: err %v", err)
	}
	// --provider cuda now goes through the plugin, which lists no GPU: a one-line error saying so.
	o := cpuOpts()
	o.Providers = []string{"cuda"}
	_, err := onnxrt.OpenBytes("tiny.onnx", runtimetest.TinyModel(spec.Tiny()), o)
	if err == nil || !strings.Contains(err.Error(), "provider cuda: plugin library "+lib+": ONNX Runtime lists 0 gpu device(s) of CUDAExecutionProvider") || strings.Contains(err.Error(), "\n") {
		t.Errorf("cuda through a plugin without devices: err %v", err)
	}
	// cuda,cpu falls back to the CPU.
	o.Providers = []string{"cuda", "cpu"}
	m, err := onnxrt.OpenBytes("tiny.onnx", runtimetest.TinyModel(spec.Tiny()), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Providers(); !slices.Equal(got, []string{"cpu"}) {
		t.Errorf("cuda,cpu with a device-less plugin: providers %v", got)
	}
	if err := onnxrt.UnregisterProviderLibrary("cuda"); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Errorf("unregister with a model open: err %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Shutdown unregisters it (no test here runs in parallel); Init starts with none.
	core := onnxrt.LibraryPath()
	if err := onnxrt.Shutdown(); err != nil {
		t.Fatalf("shutdown with a registered plugin library: %v", err)
	}
	if err := onnxrt.Init(core); err != nil {
		t.Fatal(err)
	}
	if got := onnxrt.ProviderLibraries(); len(got) != 0 {
		t.Errorf("after Shutdown and Init: registered %v", got)
	}
}

// gpuDir is where scripts/gpu-check.sh --fetch-ort-gpu lays out the npm GPU package.
func gpuDir(t *testing.T) string {
	t.Helper()
	lib, _, err := onnxrt.FindLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	// <project>/third_party/onnxruntime/libonnxruntime.so.1 → <project>/third_party/onnxruntime-gpu
	return filepath.Join(filepath.Dir(filepath.Dir(lib)), "onnxruntime-gpu")
}

// npmLibrary is the path of one of the npm GPU package's libraries ($ARTNET_ORT_GPU_DIR, else
// gpuDir); the test is skipped when it is not there.
func npmLibrary(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("ARTNET_ORT_GPU_DIR")
	if dir == "" {
		dir = gpuDir(t)
	}
	lib := filepath.Join(dir, name)
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("no %s in %s: run scripts/gpu-check.sh --fetch-ort-gpu (npm registry access) to test the npm GPU libraries", name, dir)
	}
	return lib
}

func TestNPMCUDAPlugin(t *testing.T) {
	cudaLib := npmLibrary(t, "libonnxruntime_providers_cuda.so")
	tiny := runtimetest.TinyModel(spec.Tiny())
	o := cpuOpts()
	o.Providers = []string{"cuda"}
	o.ProviderLibraries = map[string]string{"cuda": cudaLib}
	m, err := onnxrt.OpenBytes("tiny.onnx", tiny, o)
	if err == nil {
		// A machine with CUDA 13 and a GPU: the plugin works; compare with the CPU.
		defer m.Close()
		imgs := runtimetest.Images(2, spec.Tiny().ImageSize, 3)
		got, err := m.Run(context.Background(), imgs, 2)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := runtimetest.Model{Config: spec.Tiny()}.Reference(imgs, 2)
		for name, p := range want {
			if d := maxDiff(got.Probs[name], p); d > 1e-4 {
				t.Errorf("cuda plugin: %s differs from the Go reference by %g", name, d)
			}
		}
		return
	}
	msg := err.Error()
	t.Logf("npm CUDA plugin here: %s", msg)
	if !strings.Contains(msg, "provider cuda") || !strings.Contains(msg, cudaLib) || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line naming provider cuda and %s", msg, cudaLib)
	}
	if !strings.Contains(msg, ".so") || strings.HasSuffix(strings.TrimSpace(msg), cudaLib) {
		t.Errorf("error %q gives no cause", msg)
	}
}

// TestNPMTensorRTLibrary: the npm package's TensorRT library is a classic provider-bridge
// library (no CreateEpFactories), which ORT cannot register: a one-line error says so before
// ORT tries to load its TensorRT dependencies.
func TestNPMTensorRTLibrary(t *testing.T) {
	lib := npmLibrary(t, "libonnxruntime_providers_tensorrt.so")
	err := onnxrt.RegisterProviderLibrary("tensorrt", lib)
	if err == nil || !strings.Contains(err.Error(), "provider tensorrt: plugin library "+lib+": not a plugin execution provider: it does not export CreateEpFactories") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("npm TensorRT library: err %v", err)
	}
}

// TestPluginPathWithNPMCore reruns the plugin tests in a child process whose ONNX Runtime is
// the npm GPU package's 1.29 core library (a CPU build that reaches GPUs only through plugin
// libraries), including the automatic registration of the CUDA library beside it.
func TestPluginPathWithNPMCore(t *testing.T) {
	if os.Getenv("ARTNET_ORT_CHILD") != "" {
		t.Skip("in the child")
	}
	dir := gpuDir(t)
	core := filepath.Join(dir, "libonnxruntime.so.1")
	if _, err := os.Stat(core); err != nil {
		t.Skipf("no npm GPU package core library %s: run scripts/gpu-check.sh --fetch-ort-gpu (npm registry access) to test it", core)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.count=1", "-test.v",
		"-test.run", "^(TestEPDevicesListsCPU|TestPluginPathCPUMatchesDefault|TestRegisterProviderLibraryErrors|TestRegisterEmptyPluginLibrary|TestNPMCUDAPlugin|TestNPMTensorRTLibrary|TestAutoPluginBesideCore)$")
	cmd.Env = append(os.Environ(), onnxrt.EnvLibraryPath+"="+core, "ARTNET_ORT_CHILD=1", "ARTNET_ORT_GPU_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("child with %s:\n%s", core, out)
	if err != nil {
		t.Fatalf("plugin tests with the npm 1.29 core: %v", err)
	}
	for _, want := range []string{"ORT 1.29", "--- PASS: TestPluginPathCPUMatchesDefault", "--- PASS: TestRegisterEmptyPluginLibrary", "--- PASS: TestAutoPluginBesideCore"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q", want)
		}
	}
}

// TestAutoPluginBesideCore: --provider cuda on a core without CUDA registers
// libonnxruntime_providers_cuda.so when it lies beside the core, and says so when it does not.
func TestAutoPluginBesideCore(t *testing.T) {
	tiny := runtimetest.TinyModel(spec.Tiny())
	o := cpuOpts()
	o.Providers = []string{"cuda"}
	beside := filepath.Join(filepath.Dir(onnxrt.LibraryPath()), onnxrt.PluginLibraryNames["cuda"])
	m, err := onnxrt.OpenBytes("tiny.onnx", tiny, o)
	if err == nil {
		m.Close()
		if p := onnxrt.ProviderLibraries()["cuda"]; p == "" && !slices.Contains(mustAvail(t), "cuda") {
			t.Fatalf("cuda opened without a CUDA core or plugin library")
		}
		return
	}
	msg := err.Error()
	t.Logf("--provider cuda with %s: %s", onnxrt.LibraryPath(), msg)
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "provider cuda") {
		t.Fatalf("error %q: want one line naming provider cuda", msg)
	}
	if _, serr := os.Stat(beside); serr == nil {
		if !strings.Contains(msg, beside) {
			t.Errorf("a plugin library lies beside the core, but the error %q does not name it (not registered?)", msg)
		}
	} else if !strings.Contains(msg, "no plugin library "+onnxrt.PluginLibraryNames["cuda"]+" lies beside it") || !strings.Contains(msg, "--ep-lib cuda=PATH") {
		t.Errorf("no plugin library beside the core: error %q does not say so", msg)
	}
}

func mustAvail(t *testing.T) []string {
	t.Helper()
	a, err := onnxrt.AvailableProviders()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
