package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With --config (WikiArt training) every flag only --synthetic reads is refused with one line
// naming it, before anything is read or written; and --synthetic refuses WikiArt's flags.
func TestTrainRefusesFlagsOfTheOtherMode(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	values := map[string]string{"model-config": "m.json", "classes": "3,3,3"}
	for _, f := range syntheticFlags() {
		name := f.Names()[0]
		v := values[name]
		if v == "" {
			v = "5"
		}
		_, _, err := runApp(t, "train", "--config", "../../configs/train.yaml", "--out", out, "--"+name, v)
		if err == nil || !strings.Contains(err.Error(), "flag --"+name+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--config with --%s %s: want a one-line refusal naming the flag, got %v", name, v, err)
		}
	}
	for _, f := range wikiartFlags() {
		name := f.Names()[0]
		v := "1"
		if name == "max-time" {
			v = "1m"
		}
		_, _, err := runApp(t, "train", "--synthetic", "--out", out, "--"+name+"="+v)
		if err == nil || !strings.Contains(err.Error(), "flag --"+name+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--synthetic with --%s: want a one-line refusal naming the flag, got %v", name, err)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused command touched %s: %v", out, err)
	}
}
