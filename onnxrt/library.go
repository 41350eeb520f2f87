package onnxrt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/artnet/artnet/internal/envvar"
	"github.com/artnet/artnet/internal/errtext"
)

// EnvLibraryPath is the environment variable that names the ONNX Runtime shared library.
var EnvLibraryPath = envvar.ORTLibrary.Name

// ModulePath is artnet's Go module path, used to recognize the project root.
const ModulePath = "github.com/artnet/artnet"

// ProjectLibrary is where scripts/setup-ort.sh installs the library, relative to the project root.
var ProjectLibrary = filepath.Join("third_party", "onnxruntime", "libonnxruntime.so.1")

// SystemLibDirs are the system folders searched last, in order.
var SystemLibDirs = []string{"/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu"}

var systemLibNames = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

// finder holds FindLibrary's inputs so tests can replace them.
type finder struct {
	getenv func(string) string
	getwd  func() (string, error)
	exe    func() (string, error)
	sysDir []string
}

// FindLibrary locates libonnxruntime. Order: flagPath (an explicit --ort-lib flag), then
// $ONNXRUNTIME_SHARED_LIBRARY_PATH, then <project>/third_party/onnxruntime/libonnxruntime.so.1
// (the project root is found by walking up from the working directory, then from the
// executable's folder, to a go.mod of module github.com/artnet/artnet or a folder holding
// third_party/onnxruntime), then the folders in $LD_LIBRARY_PATH and SystemLibDirs. A flag or
// environment value that names a missing file is an error, not skipped. It returns the path
// and a short description of where it was found.
func FindLibrary(flagPath string) (path, source string, err error) {
	return finder{getenv: envvar.Lookup, getwd: os.Getwd, exe: os.Executable, sysDir: SystemLibDirs}.find(flagPath)
}

var notFoundHelp = "run `scripts/setup-ort.sh` (or `make ort`) or set " + EnvLibraryPath

func (f finder) find(flagPath string) (string, string, error) {
	if flagPath != "" {
		if err := isFile(flagPath); err != nil {
			return "", "", fmt.Errorf("ONNX Runtime library from flag: %w", err)
		}
		return flagPath, "flag", nil
	}
	if p := f.getenv(EnvLibraryPath); p != "" {
		if err := isFile(p); err != nil {
			return "", "", fmt.Errorf("ONNX Runtime library from $%s: %w", EnvLibraryPath, err)
		}
		return p, "$" + EnvLibraryPath, nil
	}
	var starts []string
	if wd, err := f.getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := f.exe(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		starts = append(starts, filepath.Dir(exe))
	}
	var tried []string
	for _, s := range starts {
		root, ok := projectRoot(s)
		if !ok {
			continue
		}
		p := filepath.Join(root, ProjectLibrary)
		if isFile(p) == nil {
			return p, "project " + root, nil
		}
		tried = append(tried, p)
	}
	var dirs []string
	for _, d := range filepath.SplitList(f.getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs, f.sysDir...)
	for _, d := range dirs {
		for _, n := range systemLibNames {
			p := filepath.Join(d, n)
			if isFile(p) == nil {
				return p, "system " + d, nil
			}
		}
	}
	where := "no artnet project folder found"
	if len(tried) > 0 {
		where = "not at " + strings.Join(tried, ", ")
	}
	return "", "", fmt.Errorf("ONNX Runtime library not found (%s, nor in the system library folders): %s", where, notFoundHelp)
}

func isFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	return nil
}

// projectRoot walks up from dir to the first folder with artnet's go.mod or with
// third_party/onnxruntime.
func projectRoot(dir string) (string, bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for {
		if isArtnetGoMod(filepath.Join(dir, "go.mod")) {
			return dir, true
		}
		if st, err := os.Stat(filepath.Join(dir, "third_party", "onnxruntime")); err == nil && st.IsDir() {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isArtnetGoMod(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == ModulePath
		}
	}
	return false
}

// The ONNX Runtime environment is global to the process (onnxruntime_go keeps it in package
// variables), so it is guarded here.
var env struct {
	sync.Mutex
	path   string
	models int // open Models
}

// Init loads the ONNX Runtime shared library at libPath ("" → FindLibrary("")) and creates
// the process-wide environment. It is idempotent and safe for concurrent use: a second call
// with the same (or an empty) path does nothing; one with another path is an error.
func Init(libPath string) error {
	env.Lock()
	defer env.Unlock()
	return initLocked(libPath)
}

func initLocked(libPath string) error {
	if ort.IsInitialized() {
		if libPath != "" && !samePath(libPath, env.path) {
			return fmt.Errorf("ONNX Runtime already initialized with %s, cannot switch to %s", env.path, libPath)
		}
		return nil
	}
	if libPath == "" {
		p, _, err := FindLibrary("")
		if err != nil {
			return err
		}
		libPath = p
	}
	if err := isFile(libPath); err != nil {
		return fmt.Errorf("ONNX Runtime library: %w", err)
	}
	// dlopen searches the system folders, not the working directory, for a name without '/'.
	if abs, err := filepath.Abs(libPath); err == nil {
		libPath = abs
	}
	ort.SetSharedLibraryPath(libPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("ONNX Runtime library %s: %s", libPath, errtext.OneLine(err))
	}
	env.path = libPath
	pluginsInitLocked(libPath)
	return nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.Abs(a)
	rb, err2 := filepath.Abs(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if ra == rb {
		return true
	}
	ra, err1 = filepath.EvalSymlinks(ra)
	rb, err2 = filepath.EvalSymlinks(rb)
	return err1 == nil && err2 == nil && ra == rb
}

// Shutdown destroys the ONNX Runtime environment and unloads the library. Every Model must be
// closed first. Calling it when not initialized does nothing.
func Shutdown() error {
	env.Lock()
	defer env.Unlock()
	if !ort.IsInitialized() {
		return nil
	}
	if env.models > 0 {
		return fmt.Errorf("ONNX Runtime shutdown: %d model(s) still open, close them first", env.models)
	}
	perr := pluginsShutdownLocked()
	err := ort.DestroyEnvironment()
	env.path = ""
	if err != nil {
		err = fmt.Errorf("ONNX Runtime shutdown: %w", err)
	}
	return errors.Join(perr, err)
}

// LibraryPath returns the path of the loaded library, or "" before Init.
func LibraryPath() string {
	env.Lock()
	defer env.Unlock()
	return env.path
}

// Version returns the loaded ONNX Runtime's version (e.g. "1.30.0"), or "" before Init.
func Version() string {
	env.Lock()
	defer env.Unlock()
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}

// Provider names accepted in Options.Providers.
const (
	CPU      = "cpu"
	CUDA     = "cuda"
	TensorRT = "tensorrt"
)

// KnownProviders lists the accepted provider names.
var KnownProviders = []string{CPU, CUDA, TensorRT}

// AvailableProviders lists the execution providers the loaded library can use, in
// KnownProviders order (see ProbeProviders). Init must have been called.
func AvailableProviders() ([]string, error) {
	probe, err := ProbeProviders()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range KnownProviders {
		if probe[p] == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// ProbeProviders tries every known provider and returns why each one cannot be used (nil:
// usable). onnxruntime_go does not expose GetAvailableProviders, so each non-CPU provider is
// tried by appending it to throwaway session options as a session would (which loads its
// provider or plugin library, and so also fails when CUDA/TensorRT are not installed, or a
// plugin library lists no GPU). Init must have been called.
func ProbeProviders() (map[string]error, error) {
	env.Lock()
	defer env.Unlock()
	if !ort.IsInitialized() {
		return nil, errors.New("ONNX Runtime not initialized: call runtime.Init first")
	}
	// Failed probes are expected; keep ORT from logging them as errors.
	if err := ort.SetEnvironmentLogLevel(ort.LoggingLevelFatal); err == nil {
		defer func() { _ = ort.SetEnvironmentLogLevel(ort.LoggingLevelError) }()
	}
	out := map[string]error{CPU: nil}
	for _, p := range []string{CUDA, TensorRT} {
		so, err := ort.NewSessionOptions()
		if err != nil {
			return nil, fmt.Errorf("session options: %w", err)
		}
		err = appendProvider(so, p, nil, 0, env.path)
		if derr := so.Destroy(); derr != nil {
			return nil, fmt.Errorf("session options: %w", derr)
		}
		out[p] = err
	}
	return out, nil
}
