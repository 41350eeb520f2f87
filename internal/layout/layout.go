// Package layout checks that artnet's mirror of another package's unexported struct still has
// that struct's fields, types and offsets, so that code reaching into a dependency's internals
// (GoMLX's simplego in graph/, onnxruntime_go in runtime/) fails with a clear error instead of
// reading the wrong memory after an upgrade. It has its own folder because both need it and
// must not depend on each other.
package layout

import (
	"fmt"
	"reflect"
)

// Check returns an error unless real has exactly the fields want ("name type", as
// reflect.StructField's Name and Type.String() give them) at the offsets of mirror's fields,
// and the same size as mirror.
func Check(real, mirror reflect.Type, want []string) error {
	if real.NumField() != len(want) || mirror.NumField() != len(want) || real.Size() != mirror.Size() {
		return fmt.Errorf("%s has %d fields (size %d), artnet's mirror expects %d (size %d)",
			real, real.NumField(), real.Size(), len(want), mirror.Size())
	}
	return fields(real, mirror, want)
}

// CheckPrefix is Check for the first len(want) fields of real only (real may have more).
func CheckPrefix(real, mirror reflect.Type, want []string) error {
	if real.NumField() < len(want) || mirror.NumField() != len(want) {
		return fmt.Errorf("%s has %d fields, artnet's mirror expects at least %d", real, real.NumField(), len(want))
	}
	return fields(real, mirror, want)
}

func fields(real, mirror reflect.Type, want []string) error {
	for i, w := range want {
		f, m := real.Field(i), mirror.Field(i)
		if got := f.Name + " " + f.Type.String(); got != w || f.Offset != m.Offset || f.Name != m.Name {
			return fmt.Errorf("%s field #%d is %q at offset %d, artnet's mirror expects %q at offset %d", real, i, got, f.Offset, w, m.Offset)
		}
	}
	return nil
}
