// ortapi.h: the few ONNX Runtime C API types and function signatures that runtime/ calls
// itself (plugin execution providers, which onnxruntime_go v1.27 does not wrap). The functions
// are reached by their index in ORT's OrtApi (and OrtApiBase) tables of function pointers;
// ortapi_index.go holds those indexes, generated from onnxruntime_go's copy of
// onnxruntime_c_api.h by internal/ortapigen, which also checks every signature below against
// that header (compiled together, __builtin_types_compatible_p) — so a wrong signature or
// index is a generator error, not a crash.
#ifndef ARTNET_ORTAPI_H
#define ARTNET_ORTAPI_H

#include <stddef.h>
#include <stdint.h>

#ifndef ORT_API_VERSION
// Built without onnxruntime_c_api.h (every cgo build): ORT's types are opaque here.
typedef struct OrtApi OrtApi;
typedef struct OrtApiBase OrtApiBase;
typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtEpDevice OrtEpDevice;
typedef struct OrtHardwareDevice OrtHardwareDevice;
// An enum in ORT (the values are in ortapi_index.go); enums are passed as int.
typedef int OrtHardwareDeviceType;
#endif

// OrtApiBase
typedef const OrtApi* (*artnet_GetApi_fn)(uint32_t version);
typedef const char* (*artnet_GetVersionString_fn)(void);

// OrtApi
typedef const char* (*artnet_GetErrorMessage_fn)(const OrtStatus* status);
typedef void (*artnet_ReleaseStatus_fn)(OrtStatus* input);
typedef OrtStatus* (*artnet_GetEpDevices_fn)(const OrtEnv* env, const OrtEpDevice* const** ep_devices, size_t* num_ep_devices);
typedef OrtStatus* (*artnet_SessionOptionsAppendExecutionProvider_V2_fn)(OrtSessionOptions* session_options, OrtEnv* env,
    const OrtEpDevice* const* ep_devices, size_t num_ep_devices,
    const char* const* ep_option_keys, const char* const* ep_option_vals, size_t num_ep_options);
typedef const char* (*artnet_EpDevice_EpName_fn)(const OrtEpDevice* ep_device);
typedef const char* (*artnet_EpDevice_EpVendor_fn)(const OrtEpDevice* ep_device);
typedef const OrtHardwareDevice* (*artnet_EpDevice_Device_fn)(const OrtEpDevice* ep_device);
typedef OrtHardwareDeviceType (*artnet_HardwareDevice_Type_fn)(const OrtHardwareDevice* device);
typedef uint32_t (*artnet_HardwareDevice_VendorId_fn)(const OrtHardwareDevice* device);
typedef const char* (*artnet_HardwareDevice_Vendor_fn)(const OrtHardwareDevice* device);
typedef uint32_t (*artnet_HardwareDevice_DeviceId_fn)(const OrtHardwareDevice* device);

#endif
