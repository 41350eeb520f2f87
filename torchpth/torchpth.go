// Package torchpth reads the state dict of a PyTorch torch.save file (.pth, .pt, .bin): the
// efficientnet_bN_*.pth files that torchvision and timm download into
// ~/.cache/torch/hub/checkpoints/, training checkpoints that wrap a state dict
// ({"state_dict": …}, {"model": …}, as timm and Lightning write them), and the pre-1.6 (non-zip)
// torch.save format. The tensors come back as a *safetensors.File (float tensors converted to
// float32, integer and bool tensors listed with their shape and no data), so the weight import
// treats both formats alike.
//
// The pickle is run by github.com/nlpodyssey/gopickle's unpickler (pickle package). Its pytorch
// package (pytorch.Load) is not used for the storages: it allocates every storage at the size
// the pickle claims before reading it, panics on legacy storage views and tar archives, and
// opens the archive twice. Here every storage is checked against its zip record (or, in the
// legacy format, the bytes left in the file) before it is read, every tensor's size, storage
// offset and strides are checked against its storage (views, transposes and expands are
// gathered into contiguous row-major data), and nothing that is not a state dict is accepted.
// Python classes other than torch's storages and tensor rebuilders are never executed: they
// become inert placeholders, and a placeholder where a tensor or the state dict should be is
// an error naming the class (e.g. a whole pickled nn.Module).
//
// Errors are one line naming the file and the cause.
package torchpth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/artnet/artnet/safetensors"
)

// MaxTotalBytes caps the storage bytes one file may hold (a whole EfficientNet-B4 DeepArtNet is
// about 100 MB in float32).
const MaxTotalBytes = 8 << 30

// maxPickle caps the pickle of a file (data.pkl of a whole EfficientNet-B4 state dict is about
// 60 KB).
const maxPickle = 256 << 20

// maxElements caps one tensor's element count (an expand can name more elements than its
// storage holds).
const maxElements = 1 << 31

// Magic bytes of the two torch.save formats.
var (
	zipMagic    = []byte("PK\x03\x04")
	legacyMagic = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19") // pickle proto 2, LONG1 0x1950a86a20f9469cfc6c
)

// Sniff reports whether head (the first bytes of a file) starts like a torch.save file: a zip
// archive or the legacy format's magic number.
func Sniff(head []byte) bool {
	return bytes.HasPrefix(head, zipMagic) || bytes.HasPrefix(head, legacyMagic)
}

// Wrapper keys of training checkpoints whose value is the state dict, in the order tried.
var wrapperKeys = []string{"state_dict", "model_state_dict", "model", "module", "net", "network"}

// Prefixes that wrap every name of a state dict saved from a wrapped model (DataParallel /
// DistributedDataParallel "module.", Lightning "model."); stripped when every tensor has one.
var namePrefixes = []string{"module.", "model."}

// ReadFile reads the state dict of the torch.save file at path. Metadata records where it was
// found: "format" (zip or legacy), "state_dict_key" (the wrapper key, when wrapped) and
// "stripped_prefix" (when every name carried one of namePrefixes).
func ReadFile(path string) (f *safetensors.File, err error) {
	defer func() {
		if r := recover(); r != nil { // the unpickler panics on some malformed input
			f, err = nil, fmt.Errorf("pth %s: not a readable torch.save file (%v)", path, r)
		}
	}()
	fail := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		return fmt.Errorf("pth %s: %s", path, strings.Join(strings.Fields(msg), " "))
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pth: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("pth: %w", err)
	}
	head := make([]byte, len(legacyMagic))
	n, _ := io.ReadFull(fh, head)
	head = head[:n]
	r := &reader{size: st.Size()}
	var obj any
	switch {
	case bytes.HasPrefix(head, zipMagic):
		obj, err = r.loadZip(fh)
		r.format = "zip"
	case bytes.HasPrefix(head, legacyMagic):
		r.format = "legacy"
		if st.Size() > MaxTotalBytes+maxPickle {
			return nil, fail("legacy torch.save file of %d bytes: too large", st.Size())
		}
		var data []byte
		if data, err = os.ReadFile(path); err == nil {
			obj, err = r.loadLegacy(data)
		}
	default:
		return nil, fail("not a torch.save file (neither a zip archive nor the legacy pickle format; first bytes %q)", head)
	}
	if err != nil {
		return nil, fail("%v", err)
	}
	f, err = r.stateDict(obj)
	if err != nil {
		return nil, fail("%v", err)
	}
	return f, nil
}

// reader holds the storages of one file while its pickle runs.
type reader struct {
	size     int64 // file size
	format   string
	total    int64 // storage bytes read
	storages map[string]*storage
	classes  []string // Python classes the pickle asked for that are not torch's
	// zip: records by their name inside the archive's folder; legacy: storage claims.
	records map[string]*zip.File
	legacy  []*storage
}

// storage is one torch storage: its dtype and element count, and its values once read.
type storage struct {
	key   string
	dtype dtype
	numel int64
	f32   []float32 // float dtypes (converted)
	ok    bool      // values read
}

// dtype is a torch storage class.
type dtype struct {
	name  string // safetensors dtype
	size  int64  // bytes per element
	float bool
}

var storageClasses = map[string]dtype{
	"FloatStorage":    {"F32", 4, true},
	"HalfStorage":     {"F16", 2, true},
	"BFloat16Storage": {"BF16", 2, true},
	"DoubleStorage":   {"F64", 8, true},
	"LongStorage":     {"I64", 8, false},
	"IntStorage":      {"I32", 4, false},
	"ShortStorage":    {"I16", 2, false},
	"CharStorage":     {"I8", 1, false},
	"ByteStorage":     {"U8", 1, false},
	"BoolStorage":     {"BOOL", 1, false},
}

// storageClass is what the pickle's torch.XStorage global becomes.
type storageClass struct {
	name string
	dt   dtype
}

// tensor is a rebuilt torch tensor (a view of a storage).
type tensor struct {
	st             *storage
	offset         int
	size, stride   []int
	requiresGrad   bool
	parameterClass bool // wrapped by torch._utils._rebuild_parameter
}

// rebuildTensor is torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want at least 4", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: argument 0 is %s, want a storage", describe(args[0]))
	}
	off, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset is %s, want an int", describe(args[1]))
	}
	size, err := ints(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := ints(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in rank", size, stride)
	}
	t := &tensor{st: st, offset: off, size: size, stride: stride}
	if len(args) > 4 {
		t.requiresGrad, _ = args[4].(bool)
	}
	return t, nil
}

func ints(v any) ([]int, error) {
	tu, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%s, want a tuple of ints", describe(v))
	}
	out := make([]int, tu.Len())
	for i := range out {
		x, ok := tu.Get(i).(int)
		if !ok {
			return nil, fmt.Errorf("element %d is %s, want an int", i, describe(tu.Get(i)))
		}
		out[i] = x
	}
	return out, nil
}

// opaqueClass is any other Python global: never executed, it builds inert objects that keep
// their class name (so that an error can name it).
type opaqueClass struct{ module, name string }

type opaqueObject struct{ class *opaqueClass }

func (c *opaqueClass) Call(args ...any) (any, error)  { return &opaqueObject{c}, nil }
func (c *opaqueClass) PyNew(args ...any) (any, error) { return &opaqueObject{c}, nil }
func (o *opaqueObject) PySetState(any) error          { return nil }
func (o *opaqueObject) PyDictSet(k, v any) error      { return nil }
func (o *opaqueObject) PySetAttr(string, any) error   { return nil }
func (o *opaqueObject) Call(args ...any) (any, error) { return &opaqueObject{o.class}, nil }

func (r *reader) findClass(module, name string) (any, error) {
	switch {
	case module == "torch" && strings.HasSuffix(name, "Storage"):
		dt, ok := storageClasses[name]
		if !ok {
			return nil, fmt.Errorf("storage type torch.%s is not supported (float, half, bfloat16, double and integer storages are)", name)
		}
		return &storageClass{name, dt}, nil
	case module == "torch._utils" && name == "_rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case module == "torch._utils" && name == "_rebuild_parameter":
		return rebuildParameter{}, nil
	case module == "torch" && name == "Size": // torch.Size(tuple) in some state dict metadata
		return tupleClass{}, nil
	}
	r.classes = append(r.classes, module+"."+name)
	return &opaqueClass{module, name}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(tensor, requires_grad, hooks): a pickled
// nn.Parameter (a state dict holds plain tensors, a pickled module holds parameters).
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("_rebuild_parameter: no arguments")
	}
	t, ok := args[0].(*tensor)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: argument 0 is %s, want a tensor", describe(args[0]))
	}
	cp := *t
	cp.parameterClass = true
	return &cp, nil
}

type tupleClass struct{}

func (tupleClass) Call(args ...any) (any, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	t := types.NewTupleFromSlice(args)
	return t, nil
}

// persistentID parses a persistent id ('storage', StorageClass, key, location, numel[, view]).
func (r *reader) persistentID(pid any) (*storage, any, error) {
	tu, ok := pid.(*types.Tuple)
	if !ok || tu.Len() < 5 {
		return nil, nil, fmt.Errorf("persistent id %s, want ('storage', class, key, location, size)", describe(pid))
	}
	if s, _ := tu.Get(0).(string); s != "storage" {
		return nil, nil, fmt.Errorf("persistent id of type %s, want 'storage'", describe(tu.Get(0)))
	}
	cls, ok := tu.Get(1).(*storageClass)
	if !ok {
		return nil, nil, fmt.Errorf("storage class %s is not a torch storage type", describe(tu.Get(1)))
	}
	key, ok := tu.Get(2).(string)
	if !ok {
		return nil, nil, fmt.Errorf("storage key %s, want a string", describe(tu.Get(2)))
	}
	numel, ok := tu.Get(4).(int)
	if !ok || numel < 0 {
		return nil, nil, fmt.Errorf("storage %s: size %s, want an int ≥ 0", key, describe(tu.Get(4)))
	}
	var view any
	if tu.Len() > 5 {
		view = tu.Get(5)
	}
	if st, ok := r.storages[key]; ok {
		if st.dtype != cls.dt || st.numel != int64(numel) {
			return nil, nil, fmt.Errorf("storage %s is referenced as %d %s and as %d %s", key, st.numel, st.dtype.name, numel, cls.dt.name)
		}
		return st, view, nil
	}
	bytes := int64(numel) * cls.dt.size
	if numel > maxElements || r.total+bytes > MaxTotalBytes {
		return nil, nil, fmt.Errorf("storage %s: %d elements of %s exceed the limit of %d bytes per file", key, numel, cls.dt.name, int64(MaxTotalBytes))
	}
	r.total += bytes
	st := &storage{key: key, dtype: cls.dt, numel: int64(numel)}
	if r.storages == nil {
		r.storages = map[string]*storage{}
	}
	r.storages[key] = st
	return st, view, nil
}

func (r *reader) unpickler(rd io.Reader) pickle.Unpickler {
	u := pickle.NewUnpickler(rd)
	u.FindClass = r.findClass
	return u
}

// loadZip runs data.pkl of a zip archive, reading each storage from its data/<key> record.
func (r *reader) loadZip(fh *os.File) (any, error) {
	zr, err := zip.NewReader(fh, r.size)
	if err != nil {
		return nil, fmt.Errorf("not a readable zip archive (truncated or damaged?): %v", err)
	}
	var pkl *zip.File
	r.records = map[string]*zip.File{}
	for _, zf := range zr.File {
		dir, base := path.Split(zf.Name)
		switch {
		case base == "constants.pkl":
			return nil, errors.New("a TorchScript archive (torch.jit.save), not a state dict: save model.state_dict() with torch.save")
		case base == "data.pkl" && strings.Count(dir, "/") == 1:
			pkl = zf
		case strings.HasSuffix(dir, "/data/"):
			r.records[base] = zf
		}
	}
	if pkl == nil {
		return nil, errors.New("zip archive without a data.pkl record: not a torch.save file")
	}
	if pkl.UncompressedSize64 > maxPickle {
		return nil, fmt.Errorf("data.pkl claims %d bytes (more than %d)", pkl.UncompressedSize64, maxPickle)
	}
	rc, err := pkl.Open()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %v", err)
	}
	raw, err := io.ReadAll(io.LimitReader(rc, maxPickle+1)) // to EOF: archive/zip checks the CRC
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %v", err)
	}
	n, err := pickleLen(raw)
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %v", err)
	}
	u := r.unpickler(bytes.NewReader(raw[:n]))
	u.PersistentLoad = func(pid any) (any, error) {
		st, _, err := r.persistentID(pid)
		if err != nil {
			return nil, err
		}
		if !st.ok {
			if err := r.readRecord(st); err != nil {
				return nil, err
			}
		}
		return st, nil
	}
	obj, err := u.Load()
	if err != nil {
		return nil, r.pickleError("data.pkl", err)
	}
	return obj, nil
}

func (r *reader) readRecord(st *storage) error {
	zf, ok := r.records[st.key]
	if !ok {
		return fmt.Errorf("storage %s: no data/%s record in the archive", st.key, st.key)
	}
	want := st.numel * st.dtype.size
	if int64(zf.UncompressedSize64) != want {
		return fmt.Errorf("storage %s: record data/%s holds %d bytes, the pickle says %d × %s = %d", st.key, st.key, zf.UncompressedSize64, st.numel, st.dtype.name, want)
	}
	if zf.Method == zip.Store && want > r.size {
		return fmt.Errorf("storage %s: %d bytes, more than the file's %d (truncated?)", st.key, want, r.size)
	}
	if zf.Method != zip.Store && want > 100*int64(zf.CompressedSize64)+1<<20 {
		return fmt.Errorf("storage %s: record data/%s claims %d bytes from %d compressed", st.key, st.key, want, zf.CompressedSize64)
	}
	rc, err := zf.Open()
	if err != nil {
		return fmt.Errorf("storage %s: %v", st.key, err)
	}
	defer rc.Close()
	if err := st.read(rc); err != nil {
		return err
	}
	// Reading to the end makes archive/zip check the record's CRC-32.
	if n, err := rc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return fmt.Errorf("storage %s: record data/%s: %v", st.key, st.key, err)
	}
	return nil
}

// read reads numel elements of the storage's dtype (little-endian) from rd.
func (st *storage) read(rd io.Reader) error {
	raw := make([]byte, st.numel*st.dtype.size)
	if _, err := io.ReadFull(rd, raw); err != nil {
		return fmt.Errorf("storage %s: reading %d bytes: %v (truncated?)", st.key, len(raw), err)
	}
	if st.dtype.float {
		st.f32 = make([]float32, st.numel)
		for i := range st.f32 {
			switch st.dtype.name {
			case "F32":
				st.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			case "F16":
				st.f32[i] = safetensors.Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
			case "BF16":
				st.f32[i] = safetensors.BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
			case "F64":
				st.f32[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		}
	}
	st.ok = true
	return nil
}

// loadLegacy reads the pre-1.6 format (the whole file, in memory): pickles of the magic number,
// the protocol version and the system info, the object (storages by persistent id), the list of
// storage keys, then for each key an 8-byte element count and the raw values.
func (r *reader) loadLegacy(data []byte) (any, error) {
	pos := 0
	next := func(what string, findClass func(module, name string) (any, error), persistent func(any) (any, error)) (any, error) {
		n, err := pickleLen(data[pos:])
		if err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		u := pickle.NewUnpickler(bytes.NewReader(data[pos : pos+n]))
		u.FindClass, u.PersistentLoad = findClass, persistent
		pos += n
		v, err := u.Load()
		if err != nil {
			return nil, r.pickleError(what, err)
		}
		return v, nil
	}
	noClass := func(module, name string) (any, error) {
		return nil, fmt.Errorf("unexpected class %s.%s", module, name)
	}
	magic, err := next("magic number", noClass, nil)
	if err != nil {
		return nil, err
	}
	if n, ok := magic.(*big.Int); !ok || n.Text(16) != "1950a86a20f9469cfc6c" {
		return nil, errors.New("legacy format: wrong magic number")
	}
	if v, err := next("protocol version", noClass, nil); err != nil {
		return nil, err
	} else if n, ok := v.(int); !ok || n != 1001 {
		return nil, fmt.Errorf("legacy format: protocol version %s, want 1001", describe(v))
	}
	if _, err := next("system info", noClass, nil); err != nil {
		return nil, err
	}
	obj, err := next("pickle", r.findClass, func(pid any) (any, error) {
		if tu, ok := pid.(*types.Tuple); ok && tu.Len() >= 2 {
			if s, _ := tu.Get(0).(string); s == "module" { // a pickled module's source: ignored
				return &opaqueObject{&opaqueClass{"torch.nn", "Module"}}, nil
			}
		}
		st, view, err := r.persistentID(pid)
		if err != nil {
			return nil, err
		}
		if view != nil {
			return nil, fmt.Errorf("storage %s: legacy storage views are not supported (re-save the file with torch ≥ 1.6)", st.key)
		}
		if !contains(r.legacy, st) {
			r.legacy = append(r.legacy, st)
		}
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	keysObj, err := next("storage keys", noClass, nil)
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage keys: %s, want a list", describe(keysObj))
	}
	for _, k := range *keys {
		key, _ := k.(string)
		st, ok := r.storages[key]
		if !ok {
			return nil, fmt.Errorf("storage key %s is not referenced by the pickle", describe(k))
		}
		if len(data)-pos < 8 {
			return nil, fmt.Errorf("storage %s: the file ends before its element count (truncated?)", key)
		}
		if c := int64(binary.LittleEndian.Uint64(data[pos:])); c != st.numel {
			return nil, fmt.Errorf("storage %s: %d elements in the data, %d in the pickle", key, c, st.numel)
		}
		pos += 8
		size := st.numel * st.dtype.size
		if left := int64(len(data) - pos); size > left {
			return nil, fmt.Errorf("storage %s: %d bytes, only %d left in the file (truncated?)", key, size, left)
		}
		if err := st.read(bytes.NewReader(data[pos : pos+int(size)])); err != nil {
			return nil, err
		}
		pos += int(size)
	}
	for _, st := range r.legacy {
		if !st.ok {
			return nil, fmt.Errorf("storage %s: no data in the file", st.key)
		}
	}
	return obj, nil
}

func contains(s []*storage, st *storage) bool {
	for _, x := range s {
		if x == st {
			return true
		}
	}
	return false
}

func (r *reader) pickleError(what string, err error) error {
	msg := err.Error()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		msg += " (truncated?)"
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// entries returns the key/value pairs of a dict or OrderedDict in order.
func entries(v any) ([]types.DictEntry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		return *d, true
	case *types.OrderedDict:
		out := make([]types.DictEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			out = append(out, types.DictEntry{Key: oe.Key, Value: oe.Value})
		}
		return out, true
	}
	return nil, false
}

// stateDict finds the state dict in the loaded object and converts its tensors.
func (r *reader) stateDict(obj any) (*safetensors.File, error) {
	meta := map[string]string{"format": r.format}
	es, ok := entries(obj)
	if !ok {
		return nil, r.notStateDict(obj, "the file holds")
	}
	if !allTensors(es) {
		found := false
		for _, k := range wrapperKeys {
			for _, e := range es {
				if s, _ := e.Key.(string); s == k {
					inner, ok := entries(e.Value)
					if !ok {
						return nil, r.notStateDict(e.Value, fmt.Sprintf("entry %q holds", k))
					}
					es, found = inner, true
					meta["state_dict_key"] = k
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("not a state dict: a dict whose entries are not all tensors and that has none of the keys %s (keys: %s)", strings.Join(wrapperKeys, ", "), keyList(es))
		}
	}
	if len(es) == 0 {
		return nil, errors.New("the state dict is empty")
	}
	f := &safetensors.File{Tensors: map[string]*safetensors.Tensor{}, Metadata: meta}
	var extra int64
	for _, e := range es {
		name, ok := e.Key.(string)
		if !ok {
			return nil, fmt.Errorf("not a state dict: key %s is not a string", describe(e.Key))
		}
		t, ok := e.Value.(*tensor)
		if !ok {
			return nil, r.notStateDict(e.Value, fmt.Sprintf("state dict entry %q is", name))
		}
		if _, dup := f.Tensors[name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", name)
		}
		st, err := t.convert(name, &extra)
		if err != nil {
			return nil, err
		}
		f.Tensors[name] = st
		f.Order = append(f.Order, name)
	}
	stripPrefix(f)
	return f, nil
}

func allTensors(es []types.DictEntry) bool {
	for _, e := range es {
		if _, ok := e.Value.(*tensor); !ok {
			return false
		}
	}
	return len(es) > 0
}

func keyList(es []types.DictEntry) string {
	var ks []string
	for _, e := range es {
		ks = append(ks, fmt.Sprint(e.Key))
	}
	sort.Strings(ks)
	if len(ks) > 8 {
		ks = append(ks[:8], "…")
	}
	return strings.Join(ks, ", ")
}

// notStateDict explains what was found where a state dict (or a tensor) should be.
func (r *reader) notStateDict(v any, where string) error {
	if o, ok := v.(*opaqueObject); ok {
		return fmt.Errorf("not a state dict: %s a pickled %s.%s object (save model.state_dict() with torch.save instead)", where, o.class.module, o.class.name)
	}
	return fmt.Errorf("not a state dict: %s %s, want a dict of tensor names to tensors", where, describe(v))
}

// describe names a pickled value's type for errors.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case *opaqueObject:
		return "a " + x.class.module + "." + x.class.name + " object"
	case *opaqueClass:
		return "the class " + x.module + "." + x.name
	case *tensor:
		return "a tensor"
	case *storage:
		return "a storage"
	case *types.List:
		return fmt.Sprintf("a list of %d", len(*x))
	case *types.Tuple:
		return fmt.Sprintf("a tuple of %d", x.Len())
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("the string %q", x)
	case int, int64, float64, bool, *big.Int:
		return fmt.Sprintf("the number %v", x)
	}
	return fmt.Sprintf("a %T", v)
}

// convert gathers the tensor's elements (row-major over its size) from its storage.
// extra counts the elements expands added over the file so far.
func (t *tensor) convert(name string, extra *int64) (*safetensors.Tensor, error) {
	st := t.st
	out := &safetensors.Tensor{Name: name, DType: st.dtype.name, Shape: append([]int{}, t.size...)}
	numel := int64(1)
	maxIdx := int64(t.offset)
	for i, d := range t.size {
		if d < 0 || t.stride[i] < 0 {
			return nil, fmt.Errorf("tensor %q: size %v, stride %v: negative values", name, t.size, t.stride)
		}
		numel *= int64(d)
		if numel > maxElements {
			return nil, fmt.Errorf("tensor %q: size %v has more than %d elements", name, t.size, maxElements)
		}
		if d > 0 {
			maxIdx += int64(d-1) * int64(t.stride[i])
		}
	}
	// An expand (stride 0) names more elements than its storage holds: within reason, per tensor
	// and per file (a state dict's tensors are parameters and buffers, rarely expanded).
	if numel > st.numel {
		*extra += numel - st.numel
		if numel > 1<<20 || *extra > 1<<24 {
			return nil, fmt.Errorf("tensor %q: size %v names %d elements of a storage of %d (too large an expand)", name, t.size, numel, st.numel)
		}
	}
	if t.offset < 0 || (numel > 0 && maxIdx >= st.numel) {
		return nil, fmt.Errorf("tensor %q: size %v, stride %v at offset %d reach element %d of a storage of %d", name, t.size, t.stride, t.offset, maxIdx, st.numel)
	}
	if !st.dtype.float {
		return out, nil
	}
	data := make([]float32, numel)
	if numel > 0 {
		idx := make([]int, len(t.size))
		pos := t.offset
		for i := range data {
			data[i] = st.f32[pos]
			for k := len(idx) - 1; k >= 0; k-- { // odometer over the size
				idx[k]++
				pos += t.stride[k]
				if idx[k] < t.size[k] {
					break
				}
				pos -= idx[k] * t.stride[k]
				idx[k] = 0
			}
		}
	}
	out.Data = data
	return out, nil
}

// stripPrefix removes a wrapper prefix ("module.", "model.") that every name carries.
func stripPrefix(f *safetensors.File) {
	for _, p := range namePrefixes {
		all := true
		for _, n := range f.Order {
			if !strings.HasPrefix(n, p) {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		ts := map[string]*safetensors.Tensor{}
		for i, n := range f.Order {
			t := f.Tensors[n]
			t.Name = strings.TrimPrefix(n, p)
			ts[t.Name] = t
			f.Order[i] = t.Name
		}
		f.Tensors = ts
		f.Metadata["stripped_prefix"] = p
		return
	}
}
