package models

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/models/spec"
)

// Files of a checkpoint directory.
const (
	ConfigFile    = "config.json"    // spec.Config as JSON
	VariablesFile = "variables.json" // index of the variables (VariablesIndex)
	DataFile      = "variables.bin"  // raw little-endian values, concatenated in index order

	variablesFormat  = "artnet-variables"
	variablesVersion = 1
)

// VariablesIndex is the content of variables.json.
type VariablesIndex struct {
	Format    string          `json:"format"`  // "artnet-variables"
	Version   int             `json:"version"` // 1
	Artnet    string          `json:"artnet"`  // spec.Version that wrote it
	DataBytes int64           `json:"data_bytes"`
	Variables []VariableEntry `json:"variables"`
}

// VariableEntry describes one variable of a checkpoint: its bytes are
// variables.bin[Offset : Offset+Bytes], little-endian, row-major.
type VariableEntry struct {
	Scope     string `json:"scope"`
	Name      string `json:"name"`
	DType     string `json:"dtype"` // GoMLX dtype name, e.g. "Float32", "Int64", "Uint64"
	Shape     []int  `json:"shape"`
	Trainable bool   `json:"trainable"`
	Offset    int64  `json:"offset"`
	Bytes     int64  `json:"bytes"`
	CRC32     uint32 `json:"crc32"` // IEEE CRC-32 of the bytes
}

// saveHook, when set (tests only), is called at named stages of SaveCheckpoint; an error it
// returns aborts the save there, simulating a failure mid-save.
var saveHook func(stage string) error

func hook(stage string) error {
	if saveHook != nil {
		return saveHook(stage)
	}
	if d, err := time.ParseDuration(os.Getenv(SaveDelayEnv)); err == nil && d > 0 {
		time.Sleep(d) // crash tests: widen the window in which a save is in progress
	}
	return nil
}

// SaveDelayEnv names an environment variable (a Go duration, e.g. "200ms") that makes
// SaveCheckpoint pause that long at each of its stages, mid-write; for tests that kill a
// process while it saves. Unset in normal use.
const SaveDelayEnv = "ARTNET_TEST_SAVE_DELAY"

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// SaveCheckpoint writes cfg and every variable of ctx (model weights and anything else in it:
// optimizer state, global step, random-number state) into the checkpoint directory dir.
//
// The write is atomic (internal/atomicfile.Dir): everything goes into a temporary directory
// beside dir, which is fsynced and then swapped in; an existing checkpoint at dir is replaced
// only once the new one is complete (on Linux with one atomic exchange). An existing dir that is not an artnet checkpoint
// is never replaced.
func SaveCheckpoint(ctx *context.Context, cfg spec.Config, dir string) (err error) {
	if !littleEndian {
		return errors.New("save checkpoint: only little-endian machines are supported")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	vars := sortedVariables(ctx)
	for _, v := range vars {
		if !v.HasValue() {
			return fmt.Errorf("save checkpoint %s: variable %s has no value (initialize the context's variables first)", dir, v.ScopeAndName())
		}
	}

	out, err := atomicfile.CreateDir(dir, 0o755)
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	defer out.Abort()
	tmp := out.TempPath()

	index, err := writeData(vars, filepath.Join(tmp, DataFile))
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %s: %w", dir, DataFile, err)
	}
	indexJSON, err := json.MarshalIndent(index, "", " ")
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %s: %w", dir, VariablesFile, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, VariablesFile), indexJSON, 0o644); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := hook("config"); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ConfigFile), cfg.JSON(), 0o644); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := hook("install"); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	// Commit fsyncs every file and the folder, swaps it in and fsyncs the parent.
	if err := out.Commit(); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// checkReplaceable refuses to overwrite something that is not a checkpoint directory.
func checkReplaceable(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("save checkpoint %s: exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ConfigFile, VariablesFile, DataFile:
		default:
			return fmt.Errorf("save checkpoint %s: refusing to replace a directory that is not an artnet checkpoint (it holds %q)", dir, e.Name())
		}
	}
	return nil
}

func sortedVariables(ctx *context.Context) []*context.Variable {
	var vars []*context.Variable
	for v := range ctx.IterVariables() {
		vars = append(vars, v)
	}
	sort.Slice(vars, func(i, j int) bool {
		if vars[i].Scope() != vars[j].Scope() {
			return vars[i].Scope() < vars[j].Scope()
		}
		return vars[i].Name() < vars[j].Name()
	})
	return vars
}

// writeData writes the variables' bytes to path and returns their index.
func writeData(vars []*context.Variable, path string) (*VariablesIndex, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	index := &VariablesIndex{Format: variablesFormat, Version: variablesVersion, Artnet: spec.Version}
	var offset int64
	for i, v := range vars {
		if i == len(vars)/2 {
			if err := hook("data"); err != nil {
				return nil, err
			}
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
		}
		s := t.Shape()
		if s.DType.Size() <= 0 || s.IsTuple() {
			return nil, fmt.Errorf("variable %s: unsupported shape %s", v.ScopeAndName(), s)
		}
		e := VariableEntry{Scope: v.Scope(), Name: v.Name(), DType: s.DType.String(),
			Shape: append([]int{}, s.Dimensions...), Trainable: v.Trainable, Offset: offset}
		if s.Size() > 0 {
			var werr error
			if err := t.ConstBytes(func(data []byte) {
				e.Bytes = int64(len(data))
				e.CRC32 = crc32.ChecksumIEEE(data)
				_, werr = w.Write(data)
			}); err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
			}
			if werr != nil {
				return nil, werr
			}
		}
		offset += e.Bytes
		index.Variables = append(index.Variables, e)
	}
	index.DataBytes = offset
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return index, f.Close() // fsynced by the checkpoint folder's Commit
}

// LoadCheckpoint reads a checkpoint directory written by SaveCheckpoint into a fresh context.
// Build then reuses the loaded variables when given ctx.Reuse(). Every problem (a missing file,
// bad JSON, an invalid config, a variable entry that is inconsistent, a truncated or corrupted
// data file, a DeepArtNet variable of the config missing or with another shape) is an error
// naming the directory and the bad file or variable. A checkpoint that holds no DeepArtNet
// variable at all (one of another model function, e.g. a trainer test's stand-in) loads without
// the model check.
func LoadCheckpoint(dir string) (*context.Context, spec.Config, error) {
	var cfg spec.Config
	if !littleEndian {
		return nil, cfg, errors.New("load checkpoint: only little-endian machines are supported")
	}
	fail := func(file string, err error) (*context.Context, spec.Config, error) {
		return nil, cfg, fmt.Errorf("checkpoint %s: %s: %w", dir, file, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return fail(ConfigFile, unwrapPathError(err))
	}
	cfg, err = spec.ParseJSON(raw)
	if err != nil {
		return fail(ConfigFile, err)
	}
	raw, err = os.ReadFile(filepath.Join(dir, VariablesFile))
	if err != nil {
		return fail(VariablesFile, unwrapPathError(err))
	}
	var index VariablesIndex
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&index); err != nil {
		return fail(VariablesFile, err)
	}
	if index.Format != variablesFormat || index.Version != variablesVersion {
		return fail(VariablesFile, fmt.Errorf("format %q version %d, want %q version %d", index.Format, index.Version, variablesFormat, variablesVersion))
	}

	f, err := os.Open(filepath.Join(dir, DataFile))
	if err != nil {
		return fail(DataFile, unwrapPathError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(DataFile, err)
	}
	if fi.Size() != index.DataBytes {
		return fail(DataFile, fmt.Errorf("%d bytes, %s says %d (truncated or wrong file)", fi.Size(), VariablesFile, index.DataBytes))
	}

	ctx := context.New()
	seen := map[string]bool{}
	r := bufio.NewReaderSize(f, 1<<20)
	var offset int64
	for i, e := range index.Variables {
		t, err := entryTensor(e, offset, index.DataBytes)
		if err != nil {
			return fail(VariablesFile, fmt.Errorf("variable #%d %s: %w", i, context.JoinScope(e.Scope, e.Name), err))
		}
		key := context.JoinScope(e.Scope, e.Name)
		if seen[key] {
			return fail(VariablesFile, fmt.Errorf("variable %s listed twice", key))
		}
		seen[key] = true
		if e.Bytes > 0 {
			var rerr error
			if err := t.MutableBytes(func(data []byte) {
				if _, rerr = io.ReadFull(r, data); rerr == nil && crc32.ChecksumIEEE(data) != e.CRC32 {
					rerr = errors.New("checksum mismatch (corrupted data)")
				}
			}); err != nil {
				rerr = err
			}
			if rerr != nil {
				return fail(DataFile, fmt.Errorf("variable %s: %w", key, rerr))
			}
		}
		offset += e.Bytes
		var v *context.Variable
		if err := catch(func() { v = ctx.InAbsPath(e.Scope).Checked(false).VariableWithValue(e.Name, t) }); err != nil {
			return fail(VariablesFile, fmt.Errorf("variable %s: %w", key, err))
		}
		v.SetTrainable(e.Trainable)
	}
	if offset != index.DataBytes {
		return fail(VariablesFile, fmt.Errorf("variables hold %d bytes, data_bytes says %d", offset, index.DataBytes))
	}
	if err := checkModelVariables(ctx, cfg); err != nil {
		return fail(VariablesFile, err)
	}
	return ctx, cfg, nil
}

// checkModelVariables checks that ctx holds every variable that Build creates for cfg, with the
// same shape. It builds the model's graph (no execution) on a small input to learn the shapes.
// A context without any DeepArtNet variable (a checkpoint of another model function, e.g. a
// trainer test's stand-in) is not checked.
func checkModelVariables(ctx *context.Context, cfg spec.Config) error {
	hasModel := false
	for v := range ctx.IterVariables() {
		hasModel = hasModel || partOf(v.Scope()) != ""
	}
	if !hasModel {
		return nil
	}
	backend, err := simplego.New("")
	if err != nil {
		return err
	}
	defer backend.Finalize()
	g := graph.NewGraph(backend, "checkpoint_shapes")
	defer g.Finalize()
	want := context.New()
	if err := catch(func() {
		Build(want, cfg, graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 1, 3, 32, 32)))
	}); err != nil {
		return fmt.Errorf("config %s cannot build a model: %w", ConfigFile, err)
	}
	for v := range want.IterVariables() {
		if partOf(v.Scope()) == "" {
			continue
		}
		got := ctx.GetVariableByScopeAndName(v.Scope(), v.Name())
		if got == nil {
			return fmt.Errorf("model variable %s (%s) missing", v.ScopeAndName(), TorchName(v.Scope(), v.Name()))
		}
		if !got.Shape().Equal(v.Shape()) {
			return fmt.Errorf("variable %s has shape %s, the model of %s needs %s", v.ScopeAndName(), got.Shape(), ConfigFile, v.Shape())
		}
	}
	return nil
}

// entryTensor checks an index entry and returns an empty tensor of its shape.
func entryTensor(e VariableEntry, offset, total int64) (*tensors.Tensor, error) {
	if !strings.HasPrefix(e.Scope, context.ScopeSeparator) {
		return nil, fmt.Errorf("scope %q must start with %q", e.Scope, context.ScopeSeparator)
	}
	if e.Name == "" || strings.Contains(e.Name, context.ScopeSeparator) {
		return nil, fmt.Errorf("invalid name %q", e.Name)
	}
	dt, err := dtypes.DTypeString(e.DType)
	if err != nil || dt == dtypes.InvalidDType || dt.Size() <= 0 {
		return nil, fmt.Errorf("unsupported dtype %q", e.DType)
	}
	n := int64(dt.Size())
	for _, d := range e.Shape {
		if d < 0 || (d > 0 && n > total/int64(d)+1) {
			return nil, fmt.Errorf("invalid shape %v", e.Shape)
		}
		n *= int64(d)
	}
	if e.Bytes != n {
		return nil, fmt.Errorf("%d bytes, but dtype %s shape %v needs %d", e.Bytes, e.DType, e.Shape, n)
	}
	if e.Offset != offset || e.Offset+e.Bytes > total {
		return nil, fmt.Errorf("offset %d (+%d bytes) inconsistent: expected offset %d within %d data bytes", e.Offset, e.Bytes, offset, total)
	}
	return tensors.FromShape(shapes.Make(dt, e.Shape...)), nil
}

// unwrapPathError drops the *os.PathError's path (the caller already names dir and file).
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// catch runs fn and returns a panic it raises as an error.
func catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	fn()
	return nil
}
