package wikiart

import "github.com/artnet/artnet/internal/envvar"

// DefaultRoot is where the repository keeps the split CSVs and class lists (data/wikiart,
// relative to the working directory: the repository root); `artnet data download --dest
// data/wikiart` adds the images there.
const DefaultRoot = "data/wikiart"

// EnvData names the environment variable that overrides the data root when no flag gives one.
var EnvData = envvar.Data.Name

// ResolveRoot returns the data root a command uses: flag when set, else $ARTNET_DATA, else
// configured (a training configuration's data.root), else DefaultRoot. It also says where the
// answer came from ("--data", "ARTNET_DATA", "config", "default"), for error messages.
func ResolveRoot(flag, configured string) (root, from string) {
	switch {
	case flag != "":
		return flag, "--data"
	case envvar.Data.Get() != "":
		return envvar.Data.Get(), EnvData
	case configured != "":
		return configured, "config"
	}
	return DefaultRoot, "default"
}

// NoImagesHint is what to do when a data root has no images: the sentence commands add to their
// error.
func NoImagesHint(root string) string {
	return "download them with `artnet data download --dest " + root + "`, or point --data or " + EnvData + " at a WikiArt folder with images/"
}
