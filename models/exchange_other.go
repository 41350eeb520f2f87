//go:build !(linux && (amd64 || arm64))

package models

import "errors"

// exchange is not available here: install falls back to two renames.
func exchange(a, b string) error { return errors.ErrUnsupported }
