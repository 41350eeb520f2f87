package onnxrt

import (
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/artnet/artnet/internal/errtext"
)

// Plugin execution providers. ONNX Runtime loads an execution provider library into a running
// environment with RegisterExecutionProviderLibrary (a plugin EP exporting CreateEpFactories, or
// one of ORT's own provider-bridge libraries); its devices then appear in GetEpDevices and are
// attached to a session with SessionOptionsAppendExecutionProvider_V2. This is how the GPU
// libraries of npm's com.github.asus4.onnxruntime.linux-x64-gpu work with that package's core
// library, which is a CPU build ("CUDA execution provider is not enabled in this build").
//
// For "cuda" and "tensorrt", runtime/ uses this path when a plugin library is registered for the
// provider (Options.ProviderLibraries, RegisterProviderLibrary, the --ep-lib flag), or when
// appending the provider the classic way fails (a core built without it answers "not enabled in
// this build"; a CPU core with the provider bridge cannot find libonnxruntime_providers_shared.so)
// and PluginLibraryNames[provider] lies beside the core library (registered then, once per
// environment). The classic way comes first so that a CUDA-enabled core (ONNX Runtime's official
// GPU release) keeps working as it did.

// PluginLibraryNames are the file names of the plugin libraries registered automatically when
// they sit beside the core library (the names in the npm GPU package).
var PluginLibraryNames = map[string]string{
	CUDA:     "libonnxruntime_providers_cuda.so",
	TensorRT: "libonnxruntime_providers_tensorrt.so",
}

// epNames are the ORT execution provider names of artnet's providers.
var epNames = map[string]string{
	CPU:      "CPUExecutionProvider",
	CUDA:     "CUDAExecutionProvider",
	TensorRT: "TensorrtExecutionProvider",
}

// plugins is the per-environment plugin state. Lock order: env before plugins.
var plugins struct {
	sync.Mutex
	api    ortAPI // of the loaded library; api.p is nil before Init or when apiErr is set
	apiErr error
	libs   map[string]string // provider → registered library path
	// forceV2 makes a provider (tests: "cpu") use the plugin path; v2Appends counts its uses.
	forceV2   map[string]bool
	v2Appends int
}

// pluginsInitLocked is called by initLocked once the library is loaded.
func pluginsInitLocked(libPath string) {
	plugins.Lock()
	defer plugins.Unlock()
	plugins.api, plugins.apiErr = loadORTAPI(libPath)
	plugins.libs = map[string]string{}
}

// pluginsShutdownLocked unregisters the plugin libraries; called by Shutdown before the
// environment is destroyed.
func pluginsShutdownLocked() error {
	plugins.Lock()
	defer plugins.Unlock()
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(plugins.libs)) {
		errs = append(errs, unregisterLocked(p))
	}
	plugins.api, plugins.apiErr, plugins.libs = ortAPI{}, nil, nil
	return errors.Join(errs...)
}

func registrationName(provider string) string { return "artnet-" + provider }

// apiLocked returns the OrtApi; plugins must be locked.
func apiLocked() (ortAPI, error) {
	if plugins.apiErr != nil {
		return ortAPI{}, plugins.apiErr
	}
	if plugins.api.p == nil {
		return ortAPI{}, errors.New("ONNX Runtime not initialized: call runtime.Init first")
	}
	return plugins.api, nil
}

// RegisterProviderLibrary registers an execution provider library (a plugin EP, e.g.
// libonnxruntime_providers_cuda.so of the npm GPU package) for provider ("cuda" or
// "tensorrt"): its sessions then attach that library's devices. It initializes ONNX Runtime
// (Init("")) if needed. Registering the same library again does nothing; another library for
// the same provider is an error. Registrations last until Shutdown.
func RegisterProviderLibrary(provider, path string) error {
	env.Lock()
	defer env.Unlock()
	if err := initLocked(""); err != nil {
		return err
	}
	if err := registerLocked(provider, path); err != nil {
		return fmt.Errorf("provider %s: %w", provider, err)
	}
	return nil
}

// registerLocked registers path for provider; env must be locked (or a model open). Its errors
// name the library, not the provider (the callers do).
func registerLocked(provider, path string) error {
	p := strings.ToLower(strings.TrimSpace(provider))
	if _, ok := PluginLibraryNames[p]; !ok {
		return fmt.Errorf("plugin library %s: %q is not one of cuda, tensorrt", path, provider)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	plugins.Lock()
	defer plugins.Unlock()
	if _, err := apiLocked(); err != nil {
		return fmt.Errorf("plugin library %s: %s", path, errtext.OneLine(err))
	}
	if old, ok := plugins.libs[p]; ok {
		if samePath(old, path) {
			return nil
		}
		return fmt.Errorf("plugin library %s already registered, cannot also register %s", old, path)
	}
	if err := isFile(path); err != nil {
		return fmt.Errorf("plugin library %s: %w", path, errors.Unwrap(err))
	}
	if err := exportsEPFactories(path); err != nil {
		return fmt.Errorf("plugin library %s: %w", path, err)
	}
	if err := ort.RegisterExecutionProviderLibrary(registrationName(p), path); err != nil {
		return fmt.Errorf("plugin library %s: %s", path, errtext.OneLine(err))
	}
	plugins.libs[p] = path
	return nil
}

// UnregisterProviderLibrary unregisters provider's plugin library, which unloads it; every Model
// must be closed first (their sessions may use it). It does nothing when none is registered.
func UnregisterProviderLibrary(provider string) error {
	env.Lock()
	defer env.Unlock()
	if env.models > 0 {
		return fmt.Errorf("provider %s: unregister plugin library: %d model(s) still open, close them first", provider, env.models)
	}
	plugins.Lock()
	defer plugins.Unlock()
	return unregisterLocked(strings.ToLower(strings.TrimSpace(provider)))
}

// unregisterLocked unregisters provider's library if one is registered; plugins must be locked.
func unregisterLocked(provider string) error {
	lib, ok := plugins.libs[provider]
	if !ok {
		return nil
	}
	delete(plugins.libs, provider)
	if err := ort.UnregisterExecutionProviderLibrary(registrationName(provider)); err != nil {
		return fmt.Errorf("provider %s: unregister plugin library %s: %s", provider, lib, errtext.OneLine(err))
	}
	return nil
}

// ProviderLibraries returns the registered plugin libraries (provider → path).
func ProviderLibraries() map[string]string {
	plugins.Lock()
	defer plugins.Unlock()
	return maps.Clone(plugins.libs)
}

// EPDevices lists the execution provider devices ONNX Runtime reports: the CPU provider's CPU,
// and the devices of each registered plugin library. Init must have been called.
func EPDevices() ([]EPDevice, error) {
	env.Lock()
	defer env.Unlock()
	plugins.Lock()
	defer plugins.Unlock()
	api, err := apiLocked()
	if err != nil {
		return nil, err
	}
	return api.epDevices()
}

// appendProvider adds an execution provider with the given ORT provider options to session
// options: through a plugin library (appendPlugin) when one is registered for it or when the
// core library lacks it and the library lies beside the core, the classic way otherwise.
// corePath is the loaded core library.
func appendProvider(so *ort.SessionOptions, p string, opts map[string]string, deviceID int, corePath string) error {
	plugins.Lock()
	_, registered := plugins.libs[p]
	forced := plugins.forceV2[p]
	plugins.Unlock()
	if registered || forced {
		return appendPlugin(so, p, opts, deviceID)
	}
	err := appendClassic(so, p, opts)
	if err == nil || p == CPU {
		return err
	}
	lib := filepath.Join(filepath.Dir(corePath), PluginLibraryNames[p])
	if _, serr := os.Stat(lib); serr != nil {
		return gpuHint(err, p, corePath)
	}
	perr := registerLocked(p, lib)
	if perr == nil {
		perr = appendPlugin(so, p, opts, deviceID)
	}
	if perr != nil {
		return fmt.Errorf("%s; then %w", errtext.OneLine(err), perr)
	}
	return nil
}

// appendPlugin appends provider p's device number deviceID (counting p's devices of the
// provider's hardware type in ORT's order) with SessionOptionsAppendExecutionProvider_V2.
func appendPlugin(so *ort.SessionOptions, p string, opts map[string]string, deviceID int) error {
	plugins.Lock()
	defer plugins.Unlock()
	lib := plugins.libs[p]
	where := "plugin library " + lib
	if lib == "" {
		where = "ORT's built-in EP device"
	}
	api, err := apiLocked()
	if err != nil {
		return fmt.Errorf("%s: %s", where, errtext.OneLine(err))
	}
	all, err := api.epDevices()
	if err != nil {
		return fmt.Errorf("%s: %s", where, errtext.OneLine(err))
	}
	want := "gpu"
	if p == CPU {
		want = "cpu"
	}
	var mine []EPDevice
	var seen []string
	for _, d := range all {
		seen = append(seen, d.EP+"/"+d.Type)
		if d.EP == epNames[p] && d.Type == want {
			mine = append(mine, d)
		}
	}
	if deviceID >= len(mine) {
		hint := ""
		if want == "gpu" {
			hint = "; is a GPU visible, and its driver installed?"
		}
		return fmt.Errorf("%s: ONNX Runtime lists %d %s device(s) of %s, device %d wanted (EP devices: %s%s)",
			where, len(mine), want, epNames[p], deviceID, strings.Join(seen, ", "), hint)
	}
	if err := api.appendV2(so, mine[deviceID], opts); err != nil {
		return fmt.Errorf("%s: SessionOptionsAppendExecutionProvider_V2: %s", where, errtext.OneLine(err))
	}
	plugins.v2Appends++
	slog.Info("execution provider attached through its plugin library", "provider", p, "library", lib, "device", mine[deviceID].String())
	return nil
}

// appendClassic adds a non-CPU execution provider with ORT's provider-specific append
// functions (a core built with that provider), destroying the provider options it creates.
func appendClassic(so *ort.SessionOptions, p string, opts map[string]string) error {
	switch p {
	case CUDA:
		return appendWithOptions("CUDA", ort.NewCUDAProviderOptions, so.AppendExecutionProviderCUDA, opts)
	case TensorRT:
		return appendWithOptions("TensorRT", ort.NewTensorRTProviderOptions, so.AppendExecutionProviderTensorRT, opts)
	case CPU:
		return nil
	}
	return fmt.Errorf("unknown execution provider %q (want one of %q)", p, KnownProviders)
}

// providerOptions are ORT's provider-specific option objects (CUDA, TensorRT).
type providerOptions interface {
	Update(map[string]string) error
	Destroy() error
}

// appendWithOptions creates a provider's options, sets opts on them, appends the provider with
// add and destroys the options.
func appendWithOptions[P providerOptions](name string, create func() (P, error), add func(P) error, opts map[string]string) error {
	po, err := create()
	if err != nil {
		return err
	}
	if err = po.Update(opts); err == nil {
		err = add(po)
	} else {
		err = fmt.Errorf("%s provider options %v: %w", name, opts, err)
	}
	return errors.Join(err, po.Destroy())
}

// gpuHint adds what a GPU provider needs to ORT's terse "Failed to load shared library" or
// "not enabled in this build" when no plugin library lies beside the core library.
func gpuHint(err error, p, corePath string) error {
	name := map[string]string{CUDA: "CUDA", TensorRT: "TensorRT"}[p]
	return fmt.Errorf("%s (%s needs ONNX Runtime's GPU build with libonnxruntime_providers_shared.so and %s next to the library, or a plugin library: no plugin library %s lies beside it (%s), give one with --ep-lib %s=PATH; and %s installed; see README 'GPU')",
		errtext.OneLine(err), name, PluginLibraryNames[p], PluginLibraryNames[p], filepath.Dir(corePath), p, name)
}

// providerLibrariesLocked registers Options.ProviderLibraries; env must be locked.
func providerLibrariesLocked(libs map[string]string) error {
	keys := slices.Sorted(maps.Keys(libs))
	for _, p := range keys {
		if err := registerLocked(p, libs[p]); err != nil {
			return fmt.Errorf("provider %s: %w", p, err)
		}
	}
	return nil
}

// ParseProviderLibrary parses a --ep-lib value NAME=PATH (NAME: cuda or tensorrt).
func ParseProviderLibrary(s string) (provider, path string, err error) {
	name, path, ok := strings.Cut(s, "=")
	name = strings.ToLower(strings.TrimSpace(name))
	if _, known := PluginLibraryNames[name]; !ok || !known || path == "" {
		names := slices.Sorted(maps.Keys(PluginLibraryNames))
		return "", "", fmt.Errorf("want NAME=PATH with NAME one of %s, got %s", strings.Join(names, ", "), strconv.Quote(s))
	}
	return name, path, nil
}

// exportsEPFactories checks, before ORT loads the library (and its CUDA dependencies), that an
// ELF library exports CreateEpFactories, which ORT requires of every library it registers
// (plugin EPs and provider-bridge libraries alike, ORT 1.29–1.30). The npm GPU package's
// TensorRT library is a classic provider-bridge library without it. Files that are not ELF
// are left to ORT's loader to describe.
func exportsEPFactories(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return fmt.Errorf("not a plugin execution provider: no dynamic symbols (%v)", err)
	}
	for _, s := range syms {
		if s.Name == "CreateEpFactories" && s.Section != elf.SHN_UNDEF {
			return nil
		}
	}
	return errors.New("not a plugin execution provider: it does not export CreateEpFactories (a classic provider-bridge library needs a core built with its provider, e.g. ONNX Runtime's official GPU release, used the classic way without --ep-lib)")
}
