package onnxrt

// This file calls the few ONNX Runtime C API functions that onnxruntime_go v1.27 does not wrap
// (GetEpDevices, SessionOptionsAppendExecutionProvider_V2, the OrtEpDevice/OrtHardwareDevice
// accessors), for plugin execution providers (plugin.go).
//
// The OrtApi table comes from the library onnxruntime_go already loaded: dlopen(RTLD_NOLOAD) of
// the same path, OrtGetApiBase()->GetApi(ortAPIVersion). Its functions are reached by index
// (ortapi_index.go, generated from onnxruntime_go's onnxruntime_c_api.h by internal/ortapigen,
// which also checks ortapi.h's signatures against that header). The OrtEnv and the
// OrtSessionOptions of a *ort.SessionOptions are held unexported by onnxruntime_go (the ortEnv
// package variable, the SessionOptions.o field): ortEnv is reached with //go:linkname, the field
// through a mirror struct whose layout is checked with reflect at first use (checkORTGoLayout);
// if onnxruntime_go changes them, plugin execution providers fail with a one-line error saying
// so, and everything else keeps working.

//go:generate go run ./internal/ortapigen -o ortapi_index.go

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "ortapi.h"

static void* artnet_fn(const void* table, size_t i) { return ((void* const*)table)[i]; }

// artnet_ort_api returns the OrtApi (version) of the library at path, which must be loaded
// already; on failure it writes why to err.
static const void* artnet_ort_api(const char* path, uint32_t version, size_t get_api, char* err, size_t errlen) {
	dlerror();
	void* h = dlopen(path, RTLD_NOLOAD | RTLD_NOW);
	if (h == NULL) {
		const char* e = dlerror();
		snprintf(err, errlen, "not loaded in this process (%s)", e ? e : "dlopen failed");
		return NULL;
	}
	const void* api = NULL;
	void* sym = dlsym(h, "OrtGetApiBase");
	if (sym == NULL) {
		const char* e = dlerror();
		snprintf(err, errlen, "no OrtGetApiBase (%s)", e ? e : "dlsym failed");
	} else {
		const void* base = ((const void* (*)(void))sym)();
		if (base == NULL) {
			snprintf(err, errlen, "OrtGetApiBase returned NULL");
		} else {
			api = ((artnet_GetApi_fn)artnet_fn(base, get_api))(version);
			if (api == NULL) snprintf(err, errlen, "the library does not offer ORT C API version %u", version);
		}
	}
	dlclose(h);
	return api;
}

static const char* artnet_GetErrorMessage(void* fn, void* status) {
	return ((artnet_GetErrorMessage_fn)fn)((const OrtStatus*)status);
}
static void artnet_ReleaseStatus(void* fn, void* status) { ((artnet_ReleaseStatus_fn)fn)((OrtStatus*)status); }
static void* artnet_GetEpDevices(void* fn, void* env, void** devices, size_t* n) {
	const OrtEpDevice* const* d = NULL;
	OrtStatus* s = ((artnet_GetEpDevices_fn)fn)((const OrtEnv*)env, &d, n);
	*devices = (void*)d;
	return s;
}
static void* artnet_device_at(void* devices, size_t i) { return (void*)((const OrtEpDevice* const*)devices)[i]; }
static void* artnet_AppendV2(void* fn, void* so, void* env, void* device, char** keys, char** vals, size_t n) {
	const OrtEpDevice* devs[1] = {(const OrtEpDevice*)device};
	return ((artnet_SessionOptionsAppendExecutionProvider_V2_fn)fn)((OrtSessionOptions*)so, (OrtEnv*)env, devs, 1,
		(const char* const*)keys, (const char* const*)vals, n);
}
static const char* artnet_device_str(void* fn, void* d) { return ((artnet_EpDevice_EpName_fn)fn)((const OrtEpDevice*)d); }
static void* artnet_device_hw(void* fn, void* d) { return (void*)((artnet_EpDevice_Device_fn)fn)((const OrtEpDevice*)d); }
static int artnet_hw_type(void* fn, void* h) { return (int)((artnet_HardwareDevice_Type_fn)fn)((const OrtHardwareDevice*)h); }
static uint32_t artnet_hw_u32(void* fn, void* h) { return ((artnet_HardwareDevice_VendorId_fn)fn)((const OrtHardwareDevice*)h); }
static const char* artnet_hw_str(void* fn, void* h) { return ((artnet_HardwareDevice_Vendor_fn)fn)((const OrtHardwareDevice*)h); }
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/internal/layout"
)

// ortGoEnv is onnxruntime_go's OrtEnv* (nil when not initialized).
//
//go:linkname ortGoEnv github.com/yalue/onnxruntime_go.ortEnv
var ortGoEnv unsafe.Pointer

// ortSessionOptions mirrors ort.SessionOptions (onnxruntime_go v1.27.0).
type ortSessionOptions struct {
	o unsafe.Pointer // *C.OrtSessionOptions
}

var ortSessionOptionsFields = []string{"o *onnxruntime_go._Ctype_struct_OrtSessionOptions"}

var ortGoLayout = sync.OnceValue(func() error {
	if err := layout.Check(reflect.TypeFor[ort.SessionOptions](), reflect.TypeFor[ortSessionOptions](), ortSessionOptionsFields); err != nil {
		return fmt.Errorf("onnxruntime_go's layout changed (upgraded past v1.27.0?), onnxrt/ortapi.go must follow: %w", err)
	}
	return nil
})

// ortAPI is the loaded library's const OrtApi*.
type ortAPI struct{ p unsafe.Pointer }

// loadORTAPI returns the OrtApi of the loaded library at path.
func loadORTAPI(path string) (ortAPI, error) {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	var buf [512]C.char
	p := C.artnet_ort_api(cPath, C.uint32_t(ortAPIVersion), C.size_t(idxGetApi), &buf[0], C.size_t(len(buf)))
	if p == nil {
		return ortAPI{}, fmt.Errorf("ONNX Runtime C API of %s: %s", path, C.GoString(&buf[0]))
	}
	return ortAPI{p: unsafe.Pointer(p)}, nil
}

func (a ortAPI) fn(i int) unsafe.Pointer { return C.artnet_fn(a.p, C.size_t(i)) }

// err turns an OrtStatus into an error (nil for NULL) and releases it.
func (a ortAPI) err(status unsafe.Pointer) error {
	if status == nil {
		return nil
	}
	msg := C.GoString(C.artnet_GetErrorMessage(a.fn(idxGetErrorMessage), status))
	C.artnet_ReleaseStatus(a.fn(idxReleaseStatus), status)
	return errors.New(errtext.Fold(msg))
}

// env returns onnxruntime_go's OrtEnv*, which must be initialized.
func (a ortAPI) env() (unsafe.Pointer, error) {
	if err := ortGoLayout(); err != nil {
		return nil, err
	}
	if !ort.IsInitialized() {
		return nil, errors.New("ONNX Runtime not initialized: call runtime.Init first")
	}
	if ortGoEnv == nil { // IsInitialized is ortEnv != nil: the linkname no longer points at it
		return nil, errors.New("onnxruntime_go's ortEnv variable is not where onnxrt/ortapi.go expects it (upgraded past v1.27.0?)")
	}
	return ortGoEnv, nil
}

// EPDevice is one (execution provider, hardware device) pair that ONNX Runtime reports: the
// CPU provider's CPU always, plus the devices of every registered plugin library.
type EPDevice struct {
	EP       string // execution provider name, e.g. "CPUExecutionProvider", "CUDAExecutionProvider"
	EPVendor string
	Type     string // hardware type: "cpu", "gpu", "npu"
	Vendor   string // hardware vendor
	VendorID uint32
	DeviceID uint32

	ptr unsafe.Pointer // const OrtEpDevice*, valid while the environment lives
}

func (d EPDevice) String() string {
	return fmt.Sprintf("%s (%s) on %s %q (vendor 0x%04x, device 0x%04x)", d.EP, d.EPVendor, d.Type, d.Vendor, d.VendorID, d.DeviceID)
}

func hardwareType(t int) string {
	switch t {
	case hardwareCPU:
		return "cpu"
	case hardwareGPU:
		return "gpu"
	case hardwareNPU:
		return "npu"
	}
	return fmt.Sprintf("type %d", t)
}

// epDevices lists ORT's EP devices (GetEpDevices; the array belongs to the environment).
func (a ortAPI) epDevices() ([]EPDevice, error) {
	env, err := a.env()
	if err != nil {
		return nil, err
	}
	var devs unsafe.Pointer
	var n C.size_t
	if err := a.err(C.artnet_GetEpDevices(a.fn(idxGetEpDevices), env, &devs, &n)); err != nil {
		return nil, fmt.Errorf("ONNX Runtime GetEpDevices: %w", err)
	}
	out := make([]EPDevice, 0, int(n))
	for i := range int(n) {
		d := C.artnet_device_at(devs, C.size_t(i))
		hw := C.artnet_device_hw(a.fn(idxEpDevice_Device), d)
		out = append(out, EPDevice{
			EP:       C.GoString(C.artnet_device_str(a.fn(idxEpDevice_EpName), d)),
			EPVendor: C.GoString(C.artnet_device_str(a.fn(idxEpDevice_EpVendor), d)),
			Type:     hardwareType(int(C.artnet_hw_type(a.fn(idxHardwareDevice_Type), hw))),
			Vendor:   C.GoString(C.artnet_hw_str(a.fn(idxHardwareDevice_Vendor), hw)),
			VendorID: uint32(C.artnet_hw_u32(a.fn(idxHardwareDevice_VendorId), hw)),
			DeviceID: uint32(C.artnet_hw_u32(a.fn(idxHardwareDevice_DeviceId), hw)),
			ptr:      d,
		})
	}
	return out, nil
}

// appendV2 appends the execution provider of device to so with the given provider options
// (SessionOptionsAppendExecutionProvider_V2).
func (a ortAPI) appendV2(so *ort.SessionOptions, device EPDevice, opts map[string]string) error {
	env, err := a.env()
	if err != nil {
		return err
	}
	cso := (*ortSessionOptions)(unsafe.Pointer(so)).o
	if cso == nil {
		return errors.New("session options already destroyed")
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := len(keys)
	var ck, cv **C.char
	if n > 0 {
		size := C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))
		ck, cv = (**C.char)(C.malloc(size)), (**C.char)(C.malloc(size))
		ks, vs := unsafe.Slice(ck, n), unsafe.Slice(cv, n)
		for i, k := range keys {
			ks[i], vs[i] = C.CString(k), C.CString(opts[k])
		}
		defer func() {
			for i := range n {
				C.free(unsafe.Pointer(ks[i]))
				C.free(unsafe.Pointer(vs[i]))
			}
			C.free(unsafe.Pointer(ck))
			C.free(unsafe.Pointer(cv))
		}()
	}
	return a.err(C.artnet_AppendV2(a.fn(idxSessionOptionsAppendExecutionProvider_V2), cso, env, device.ptr, ck, cv, C.size_t(n)))
}
