package models

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
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
	ChecksumsFile = "checksums.json" // size and SHA-256 of every other file (Checksums), written last
	OptionsFile   = "options.json"   // optional: the run options it was trained with (SaveCheckpointWithOptions)

	variablesFormat  = "artnet-variables"
	variablesVersion = 1
	checksumsFormat  = "artnet-checkpoint-checksums"
	checksumsVersion = 1
)

// checkpointFiles are the files a checksums.json must cover, in the order they are checked;
// optionalFiles those it covers when the checkpoint has them.
var (
	checkpointFiles = []string{ConfigFile, VariablesFile, DataFile}
	optionalFiles   = []string{OptionsFile}
)

// Checksums is the content of checksums.json: the size and SHA-256 of every other file of the
// checkpoint. SaveCheckpoint writes it after all of them; LoadCheckpoint checks each file against
// it before using it, so a file edited by hand (say a class name or the mean in config.json) or
// damaged is refused with an error naming it. It guards against accidents, not against someone
// who rewrites checksums.json too.
type Checksums struct {
	Format  string              `json:"format"`  // "artnet-checkpoint-checksums"
	Version int                 `json:"version"` // 1
	Files   map[string]FileHash `json:"files"`   // by file name
}

// FileHash is one file's size and SHA-256 (hex).
type FileHash struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func hashOf(b []byte) FileHash {
	sum := sha256.Sum256(b)
	return FileHash{Bytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

// errEdited is the mismatch error: the file is not the one SaveCheckpoint wrote.
func errEdited(got, want FileHash) error {
	if got.Bytes != want.Bytes {
		return fmt.Errorf("%d bytes, %s says %d: edited or damaged since the checkpoint was saved (checkpoint files must not be edited)", got.Bytes, ChecksumsFile, want.Bytes)
	}
	return fmt.Errorf("SHA-256 differs from %s's: edited or damaged since the checkpoint was saved (checkpoint files must not be edited)", ChecksumsFile)
}

// readChecksums reads dir's checksums.json; (nil, nil) when the checkpoint has none (written
// before artnet 0.x checked checkpoint files).
func readChecksums(dir string) (*Checksums, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ChecksumsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, unwrapPathError(err)
	}
	var c Checksums
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if c.Format != checksumsFormat || c.Version != checksumsVersion {
		return nil, fmt.Errorf("format %q version %d, want %q version %d", c.Format, c.Version, checksumsFormat, checksumsVersion)
	}
	for name, h := range c.Files {
		if !slices.Contains(checkpointFiles, name) && !slices.Contains(optionalFiles, name) {
			return nil, fmt.Errorf("lists %q, which is not a checkpoint file", name)
		}
		if b, err := hex.DecodeString(h.SHA256); err != nil || len(b) != sha256.Size || h.Bytes < 0 {
			return nil, fmt.Errorf("entry %q: want bytes ≥ 0 and a 64-digit hex sha256", name)
		}
	}
	for _, name := range checkpointFiles {
		if _, ok := c.Files[name]; !ok {
			return nil, fmt.Errorf("does not cover %s", name)
		}
	}
	return &c, nil
}

// unverified remembers the checkpoints without checksums.json already warned about.
var unverified sync.Map

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
// returns aborts the save there, simulating a failure mid-save. Nil in normal use: the save
// path reads no environment and sleeps nowhere.
var saveHook func(stage string) error

// testSaveDelay is set only by a test's linker flag (go build -ldflags
// "-X github.com/artnet/artnet/models.testSaveDelay=150ms"): a binary built so pauses that long
// at each stage of SaveCheckpoint, for tests that kill a process while it saves. Empty in every
// other build.
var testSaveDelay string

func init() {
	if d, err := time.ParseDuration(testSaveDelay); err == nil && d > 0 {
		saveHook = func(string) error { time.Sleep(d); return nil }
	}
}

func hook(stage string) error {
	if saveHook != nil {
		return saveHook(stage)
	}
	return nil
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// SaveCheckpoint writes cfg and every variable of ctx (model weights and anything else in it:
// optimizer state, global step, random-number state) into the checkpoint directory dir.
//
// The write is atomic (internal/atomicfile.Dir): everything goes into a temporary directory
// beside dir, checksums.json (size and SHA-256 of config.json, variables.json and
// variables.bin) last, which is fsynced and then swapped in; an existing checkpoint at dir is
// replaced only once the new one is complete (on Linux with one atomic exchange). An existing
// dir that is not an artnet checkpoint is never replaced.
func SaveCheckpoint(ctx *context.Context, cfg spec.Config, dir string) error {
	return saveCheckpoint(ctx, cfg, dir, nil)
}

// SaveCheckpointWithOptions is SaveCheckpoint with the options the model was trained with
// (JSON, e.g. train's PhaseOptions) saved as options.json, covered by checksums.json like the
// other files; ReadCheckpointOptions reads them back without loading the variables.
func SaveCheckpointWithOptions(ctx *context.Context, cfg spec.Config, dir string, options []byte) error {
	if options != nil && !json.Valid(options) {
		return fmt.Errorf("save checkpoint %s: %s: not valid JSON", dir, OptionsFile)
	}
	return saveCheckpoint(ctx, cfg, dir, options)
}

func saveCheckpoint(ctx *context.Context, cfg spec.Config, dir string, options []byte) (err error) {
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

	index, dataHash, err := writeData(vars, filepath.Join(tmp, DataFile))
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
	cfgJSON := cfg.JSON()
	if err := os.WriteFile(filepath.Join(tmp, ConfigFile), cfgJSON, 0o644); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := hook("checksums"); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	// Last: the checksums of every other file, as written.
	sums := Checksums{Format: checksumsFormat, Version: checksumsVersion, Files: map[string]FileHash{
		ConfigFile: hashOf(cfgJSON), VariablesFile: hashOf(indexJSON), DataFile: dataHash}}
	if options != nil {
		if err := os.WriteFile(filepath.Join(tmp, OptionsFile), options, 0o644); err != nil {
			return fmt.Errorf("save checkpoint %s: %w", dir, err)
		}
		sums.Files[OptionsFile] = hashOf(options)
	}
	sumsJSON, err := json.MarshalIndent(sums, "", " ")
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %s: %w", dir, ChecksumsFile, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ChecksumsFile), append(sumsJSON, '\n'), 0o644); err != nil {
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
		case ConfigFile, VariablesFile, DataFile, ChecksumsFile, OptionsFile:
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

// writeData writes the variables' bytes to path and returns their index and the file's size
// and SHA-256.
func writeData(vars []*context.Variable, path string) (*VariablesIndex, FileHash, error) {
	var none FileHash
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, none, err
	}
	defer f.Close()
	sha := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, sha), 1<<20)
	index := &VariablesIndex{Format: variablesFormat, Version: variablesVersion, Artnet: spec.Version}
	var offset int64
	for i, v := range vars {
		if i == len(vars)/2 {
			if err := hook("data"); err != nil {
				return nil, none, err
			}
		}
		t, err := v.Value()
		if err != nil {
			return nil, none, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
		}
		s := t.Shape()
		if s.DType.Size() <= 0 || s.IsTuple() {
			return nil, none, fmt.Errorf("variable %s: unsupported shape %s", v.ScopeAndName(), s)
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
				return nil, none, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
			}
			if werr != nil {
				return nil, none, werr
			}
		}
		offset += e.Bytes
		index.Variables = append(index.Variables, e)
	}
	index.DataBytes = offset
	if err := w.Flush(); err != nil {
		return nil, none, err
	}
	return index, FileHash{Bytes: offset, SHA256: hex.EncodeToString(sha.Sum(nil))}, f.Close() // fsynced by the checkpoint folder's Commit
}

// LoadCheckpoint reads a checkpoint directory written by SaveCheckpoint into a fresh context.
// Build then reuses the loaded variables when given ctx.Reuse(). Each file is first checked
// against checksums.json (its size and SHA-256; see Checksums): a file edited or damaged since
// the save is refused with an error naming it. A checkpoint without checksums.json (saved before
// artnet wrote one) is accepted with a warning (logged once per directory): it was written
// atomically and its variables carry CRC-32s, but its config.json cannot be verified. Every
// other problem (a missing file,
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
	sums, err := readChecksums(dir)
	if err != nil {
		return fail(ChecksumsFile, err)
	}
	if sums == nil {
		if _, warned := unverified.LoadOrStore(filepath.Clean(dir), true); !warned {
			slog.Warn("checkpoint without "+ChecksumsFile+" (saved before artnet checked checkpoint files): its files are not verified; checkpoints saved from now on carry one", "dir", dir)
		}
	}
	// verify checks a small file's bytes against checksums.json (when there is one).
	verify := func(file string, raw []byte) error {
		if sums == nil {
			return nil
		}
		if got, want := hashOf(raw), sums.Files[file]; got != want {
			return errEdited(got, want)
		}
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return fail(ConfigFile, unwrapPathError(err))
	}
	if err := verify(ConfigFile, raw); err != nil {
		return fail(ConfigFile, err)
	}
	cfg, err = spec.ParseJSON(raw)
	if err != nil {
		return fail(ConfigFile, err)
	}
	raw, err = os.ReadFile(filepath.Join(dir, VariablesFile))
	if err != nil {
		return fail(VariablesFile, unwrapPathError(err))
	}
	if err := verify(VariablesFile, raw); err != nil {
		return fail(VariablesFile, err)
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
	if sums != nil && fi.Size() != sums.Files[DataFile].Bytes {
		return fail(DataFile, errEdited(FileHash{Bytes: fi.Size()}, sums.Files[DataFile]))
	}

	ctx := context.New()
	seen := map[string]bool{}
	sha := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, sha), 1<<20)
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
	if sums != nil {
		if _, err := io.Copy(io.Discard, r); err != nil { // the hash covers every byte (bufio may not have read to EOF)
			return fail(DataFile, err)
		}
		if got := hex.EncodeToString(sha.Sum(nil)); got != sums.Files[DataFile].SHA256 {
			return fail(DataFile, errEdited(FileHash{Bytes: fi.Size(), SHA256: got}, sums.Files[DataFile]))
		}
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
