package errtext

import (
	"errors"
	"io/fs"
	"testing"
)

func TestOneLine(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.Join(errors.New("a.png: empty file"), errors.New("b.png:  truncated\timage")), "a.png: empty file; b.png: truncated image"},
		{errors.New("  plain  "), "plain"},
		// yaml.v3's TypeError: a heading and indented items.
		{errors.New("yaml: unmarshal errors:\n  line 3: field foo not found\n  line 4: field bar not found"), "yaml: unmarshal errors: line 3: field foo not found; line 4: field bar not found"},
		{errors.New("first\n\n\nsecond\n"), "first; second"},
		{nil, ""},
	} {
		if got := OneLine(c.err); got != c.want {
			t.Errorf("OneLine(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestFlat(t *testing.T) {
	one := errors.New("one line")
	if Flat(one) != one {
		t.Error("Flat changed a one-line error")
	}
	if Flat(nil) != nil {
		t.Error("Flat(nil) != nil")
	}
	multi := errors.Join(fs.ErrNotExist, errors.New("second"))
	f := Flat(multi)
	if f.Error() != "file does not exist; second" {
		t.Errorf("Flat message %q", f)
	}
	if !errors.Is(f, fs.ErrNotExist) {
		t.Error("Flat lost the cause")
	}
}
