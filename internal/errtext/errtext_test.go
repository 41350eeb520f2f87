package errtext

import (
	"errors"
	"testing"
)

func TestOneLine(t *testing.T) {
	err := errors.Join(errors.New("a.png: empty file"), errors.New("b.png:  truncated\timage"))
	if got, want := OneLine(err.Error()), "a.png: empty file; b.png: truncated image"; got != want {
		t.Errorf("OneLine = %q, want %q", got, want)
	}
	if got := OneLine("  plain  "); got != "plain" {
		t.Errorf("OneLine = %q, want %q", got, "plain")
	}
}
