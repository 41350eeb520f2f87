package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/artnet/artnet/internal/envvar"
)

// doctor lists every registered environment variable, with its value when set.
func TestDoctorListsEnvironment(t *testing.T) {
	t.Setenv(envvar.Data.Name, "/some/where")
	var buf bytes.Buffer
	doctorEnv(&buf)
	for _, v := range envvar.All() {
		if !strings.Contains(buf.String(), v.Name) {
			t.Errorf("doctor does not list %s:\n%s", v.Name, buf.String())
		}
	}
	if !strings.Contains(buf.String(), `"/some/where"`) {
		t.Errorf("doctor does not show the value of %s:\n%s", envvar.Data.Name, buf.String())
	}
}
