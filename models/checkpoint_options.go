package models

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ReadCheckpointOptions returns the options.json of checkpoint dir (the run options it was
// trained with; SaveCheckpointWithOptions), checked against checksums.json, without loading the
// variables. nil when the checkpoint has none (saved without options, or before artnet wrote
// them). A file that checksums.json does not cover, or that was edited since the save, is
// refused with an error naming it.
func ReadCheckpointOptions(dir string) ([]byte, error) {
	fail := func(file string, err error) ([]byte, error) {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, file, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, OptionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return fail(OptionsFile, unwrapPathError(err))
	}
	sums, err := readChecksums(dir)
	if err != nil {
		return fail(ChecksumsFile, err)
	}
	if sums == nil {
		return fail(OptionsFile, fmt.Errorf("no %s to check it against", ChecksumsFile))
	}
	want, ok := sums.Files[OptionsFile]
	if !ok {
		return fail(OptionsFile, fmt.Errorf("not covered by %s (not written by SaveCheckpointWithOptions)", ChecksumsFile))
	}
	if got := hashOf(raw); got != want {
		return fail(OptionsFile, errEdited(got, want))
	}
	return raw, nil
}
