//go:build cgo

package preprocess

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// The few TurboJPEG 2.x declarations used (turbojpeg.h, libturbojpeg.so.0; unchanged in 3.x),
// declared here so that building needs no -dev package: the library is opened with dlopen.
typedef void *tjhandle;

static void *tj_lib;
static tjhandle (*tj_init_decompress)(void);
static int (*tj_decompress_header3)(tjhandle, const unsigned char *, unsigned long, int *, int *, int *, int *);
static int (*tj_decompress2)(tjhandle, const unsigned char *, unsigned long, unsigned char *, int, int, int, int, int);
static int (*tj_destroy)(tjhandle);
static char *(*tj_get_error_str2)(tjhandle);
static int (*tj_get_error_code)(tjhandle);

// tj_open loads the library at path; it returns NULL or a message (copied to msg).
static int tj_open(const char *path, char *msg, int msglen) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		strncpy(msg, e ? e : "dlopen failed", msglen - 1);
		return -1;
	}
#define TJ_SYM(var, name) \
	*(void **)(&var) = dlsym(h, name); \
	if (!var) { strncpy(msg, "symbol " name " not found", msglen - 1); dlclose(h); return -1; }
	TJ_SYM(tj_init_decompress, "tjInitDecompress")
	TJ_SYM(tj_decompress_header3, "tjDecompressHeader3")
	TJ_SYM(tj_decompress2, "tjDecompress2")
	TJ_SYM(tj_destroy, "tjDestroy")
	TJ_SYM(tj_get_error_str2, "tjGetErrorStr2")
	TJ_SYM(tj_get_error_code, "tjGetErrorCode")
#undef TJ_SYM
	tj_lib = h;
	return 0;
}

// tj_path writes the file the loader resolved the library to into out.
static void tj_path(char *out, int outlen) {
	Dl_info info;
	if (tj_lib && dladdr(*(void **)(&tj_init_decompress), &info) && info.dli_fname) {
		strncpy(out, info.dli_fname, outlen - 1);
	}
}

// c_malloc_in_use is glibc's mallinfo2().uordblks (bytes malloc has handed out and not had
// back), looked up at run time so that other C libraries still link; -1 where it is absent.
struct tj_mallinfo2 { size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost; };
static long long c_malloc_in_use(void) {
	struct tj_mallinfo2 (*mi)(void);
	*(void **)(&mi) = dlsym(RTLD_DEFAULT, "mallinfo2");
	if (!mi) return -1;
	return (long long)mi().uordblks;
}

static void tj_err(tjhandle t, char *msg, int msglen) {
	const char *e = tj_get_error_str2(t);
	strncpy(msg, e ? e : "unknown TurboJPEG error", msglen - 1);
}

// tj_header reads the dimensions, subsampling and colour space. It returns 0 or -1 (msg set).
static int tj_header(const unsigned char *buf, unsigned long n, int *w, int *h, int *samp, int *cs, char *msg, int msglen) {
	tjhandle t = tj_init_decompress();
	if (!t) {
		tj_err(NULL, msg, msglen);
		return -1;
	}
	int r = tj_decompress_header3(t, buf, n, w, h, samp, cs);
	if (r != 0) tj_err(t, msg, msglen);
	tj_destroy(t);
	return r;
}

// tj_decode decompresses into dst (w×h pixels of format pf, rows pitch bytes apart; w×h
// selects the DCT scaling factor). It returns 0, 1 for a warning (the image was decoded;
// msg set) or -1 for an error (msg set). The handle is destroyed on every path.
static int tj_decode(const unsigned char *buf, unsigned long n, unsigned char *dst, int w, int pitch, int h, int pf, int flags, char *msg, int msglen) {
	tjhandle t = tj_init_decompress();
	if (!t) {
		tj_err(NULL, msg, msglen);
		return -1;
	}
	int rc = 0;
	if (tj_decompress2(t, buf, n, dst, w, pitch, h, pf, flags) != 0) {
		rc = tj_get_error_code(t) == 0 ? 1 : -1; // TJERR_WARNING is 0
		tj_err(t, msg, msglen);
	}
	tj_destroy(t);
	return rc;
}
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/artnet/artnet/internal/envvar"
)

// TurboJPEG constants (turbojpeg.h, 2.1).
const (
	tjpfRGBA        = 7
	tjcsCMYK        = 3
	tjcsYCCK        = 4
	tjflagLimitScan = 32768 // refuse progressive JPEGs with more than 500 scans
)

const tjMsgLen = 256

var turboOnce struct {
	sync.Once
	path string // resolved library file, "" when not loaded
	why  string // why not loaded
}

// turboLibNames are tried in order when ARTNET_TURBOJPEG_LIB is unset: the runtime library of
// Debian/Ubuntu's libturbojpeg0 (and Fedora's turbojpeg), then the unversioned -dev link.
var turboLibNames = []string{"libturbojpeg.so.0", "libturbojpeg.so"}

func loadTurbo() (path, why string) {
	turboOnce.Do(func() {
		names := turboLibNames
		if p := envvar.TurboJPEG.Get(); p != "" {
			names = []string{p}
		}
		var msgs []string
		for _, name := range names {
			cname := C.CString(name)
			var msg [tjMsgLen]C.char
			rc := C.tj_open(cname, &msg[0], tjMsgLen)
			C.free(unsafe.Pointer(cname))
			if rc == 0 {
				var p [1024]C.char
				C.tj_path(&p[0], 1024)
				turboOnce.path = C.GoString(&p[0])
				if turboOnce.path == "" {
					turboOnce.path = name
				}
				return
			}
			msgs = append(msgs, C.GoString(&msg[0]))
		}
		turboOnce.why = strings.Join(msgs, "; ")
	})
	return turboOnce.path, turboOnce.why
}

type tjHeader struct {
	w, h, subsamp, colorspace int
}

// cmyk reports a CMYK or YCCK JPEG, which TurboJPEG cannot convert to RGB.
func (h tjHeader) cmyk() bool { return h.colorspace == tjcsCMYK || h.colorspace == tjcsYCCK }

// errNotLoaded guards the C calls: they go through function pointers set by loadTurbo.
func errNotLoaded() error {
	if path, why := loadTurbo(); path == "" {
		return fmt.Errorf("libjpeg-turbo not loaded: %s", why)
	}
	return nil
}

func turboHeader(data []byte) (tjHeader, error) {
	if err := errNotLoaded(); err != nil {
		return tjHeader{}, err
	}
	var w, h, samp, cs C.int
	var msg [tjMsgLen]C.char
	if len(data) == 0 {
		return tjHeader{}, fmt.Errorf("no data")
	}
	if C.tj_header((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), &w, &h, &samp, &cs, &msg[0], tjMsgLen) != 0 {
		return tjHeader{}, fmt.Errorf("%s", C.GoString(&msg[0]))
	}
	return tjHeader{int(w), int(h), int(samp), int(cs)}, nil
}

// turboDecodeRGBA decodes data into dst (w×h RGBA pixels, 4·w bytes per row, w×h being the
// full size or a TJSCALED size). warning is TurboJPEG's message when it decoded the image
// despite a problem (e.g. "Premature end of JPEG file").
func turboDecodeRGBA(data, dst []byte, w, h int) (warning string, err error) {
	if err := errNotLoaded(); err != nil {
		return "", err
	}
	if len(data) == 0 || len(dst) < 4*w*h {
		return "", fmt.Errorf("no data")
	}
	var msg [tjMsgLen]C.char
	rc := C.tj_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.int(w), C.int(4*w), C.int(h), tjpfRGBA, tjflagLimitScan, &msg[0], tjMsgLen)
	switch rc {
	case 0:
		return "", nil
	case 1:
		return C.GoString(&msg[0]), nil
	}
	return "", fmt.Errorf("%s", C.GoString(&msg[0]))
}

// cMallocInUse returns the bytes the C heap (glibc malloc) has handed out and not had back, or
// -1 where glibc's mallinfo2 is not available. Tests use it to see C memory leaks precisely
// (the process's RSS also moves with the Go heap).
func cMallocInUse() int64 { return int64(C.c_malloc_in_use()) }
