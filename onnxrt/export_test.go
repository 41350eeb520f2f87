package onnxrt

// ForcePluginPath makes provider p (e.g. "cpu", whose EP device ORT always lists) attach its
// device through SessionOptionsAppendExecutionProvider_V2 until the returned function is
// called; PluginAppends counts those appends.
func ForcePluginPath(p string) (restore func()) {
	plugins.Lock()
	defer plugins.Unlock()
	if plugins.forceV2 == nil {
		plugins.forceV2 = map[string]bool{}
	}
	plugins.forceV2[p] = true
	return func() {
		plugins.Lock()
		defer plugins.Unlock()
		delete(plugins.forceV2, p)
	}
}

// PluginAppends is how many execution providers were attached through the plugin path.
func PluginAppends() int {
	plugins.Lock()
	defer plugins.Unlock()
	return plugins.v2Appends
}
