// Package defaultmodel embeds artnet's built-in default model: a DeepArtNet trained by artnet
// itself on the WikiArt images of ../shared/wikiart (configs/train.yaml, a small CPU
// configuration trained from scratch) and exported to ONNX. `artnet predict` uses it when no
// --model is given. How it was made and how well it does: docs/results-wikiart.md.
package defaultmodel

import _ "embed"

// Name is the file name of the embedded model (used in messages and errors).
const Name = "artnet-default.onnx"

//go:embed artnet-default.onnx
var onnx []byte

// Bytes returns the embedded ONNX model. The slice is shared: do not modify it.
func Bytes() []byte { return onnx }
