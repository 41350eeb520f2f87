package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
)

// `artnet predict IMAGE` without --model uses the built-in default model (trained on WikiArt),
// whose class names are the real WikiArt ones.
func TestPredictWithoutModelUsesDefault(t *testing.T) {
	stdout, stderr, err := runApp(t, "predict", "--json", "--threads", "1", testenv.Testdata(t, testenv.TheScream))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(stdout, "\n", 2)[0]), &p); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	iface, err := spec.ValidateONNX(defaultmodel.Name, defaultmodel.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cfg := iface.Config
	for _, task := range spec.Tasks {
		tp, _ := p[task].(map[string]any)
		label, _ := tp["label"].(string)
		found := false
		for _, name := range cfg.Classes[task] {
			found = found || name == label
		}
		if !found {
			t.Errorf("%s label %q is not one of the default model's classes", task, label)
		}
	}
}
