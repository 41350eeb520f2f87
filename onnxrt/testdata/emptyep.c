// emptyep.c: the smallest ONNX Runtime plugin execution provider library — it exports the two
// entry points ORT requires (CreateEpFactories, ReleaseEpFactory) and creates no factory, so it
// registers everywhere and lists no device. plugin_test.go compiles it with the C compiler to
// test registration, unregistration and the "no device" error without a GPU.
#include <stddef.h>

typedef struct OrtStatus OrtStatus;

OrtStatus* CreateEpFactories(const char* registered_name, const void* ort_api_base, const void* default_logger,
                             void** factories, size_t max_factories, size_t* num_factories) {
  (void)registered_name; (void)ort_api_base; (void)default_logger; (void)factories; (void)max_factories;
  *num_factories = 0;
  return NULL;
}

OrtStatus* ReleaseEpFactory(void* factory) {
  (void)factory;
  return NULL;
}
