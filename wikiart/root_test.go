package wikiart

import (
	"strings"
	"testing"
)

func TestResolveRoot(t *testing.T) {
	t.Setenv(EnvData, "")
	for _, tc := range []struct {
		flag, env, configured, want, from string
	}{
		{"", "", "", DefaultRoot, "default"},
		{"", "", "cfg/root", "cfg/root", "config"},
		{"", "env/root", "cfg/root", "env/root", EnvData},
		{"flag/root", "env/root", "cfg/root", "flag/root", "--data"},
	} {
		t.Setenv(EnvData, tc.env)
		if got, from := ResolveRoot(tc.flag, tc.configured); got != tc.want || from != tc.from {
			t.Errorf("ResolveRoot(%q, %q) with %s=%q = %q, %q; want %q, %q", tc.flag, tc.configured, EnvData, tc.env, got, from, tc.want, tc.from)
		}
	}
	if h := NoImagesHint("x"); !strings.Contains(h, "data download --dest x") || !strings.Contains(h, EnvData) {
		t.Errorf("hint %q", h)
	}
}
