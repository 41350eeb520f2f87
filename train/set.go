package train

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/artnet/artnet/internal/errtext"
)

// Set applies overrides of the form path=value (`artnet train --set`, as GoMLX's -set) to the
// configuration, in order, and validates the result. The path names a field by its YAML keys,
// dot-separated (train.weight_decay, data.cache_mem, model.variant); inside phases a key is a
// phase's name, or * for every phase (phases.2.lr, phases.*.batch). The value is read as YAML
// (0.5, true, 2GiB, [style]). The error is one line naming the override and the field.
func (fc *FileConfig) Set(overrides ...string) error {
	if len(overrides) == 0 {
		return nil
	}
	b, err := yaml.Marshal(fc)
	if err != nil {
		return fmt.Errorf("training config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("training config: %w", err)
	}
	out := *fc
	for _, s := range overrides {
		path, raw, ok := strings.Cut(s, "=")
		if !ok || path == "" {
			return fmt.Errorf("override %q: want path=value, e.g. train.weight_decay=0.05", s)
		}
		var v any
		if err := yaml.Unmarshal([]byte(raw), &v); err != nil {
			return fmt.Errorf("override %s: value %q: %s", path, raw, errtext.OneLine(err))
		}
		if v == nil && raw != "null" && raw != "~" {
			v = raw // "" stays an empty string
		}
		if err := setPath(m, strings.Split(path, "."), v, ""); err != nil {
			return fmt.Errorf("override %s: %w", path, err)
		}
		// Decode after each one, so that an unknown field or a wrong type names its override.
		b, err := yaml.Marshal(m)
		if err != nil {
			return fmt.Errorf("override %s: %w", path, err)
		}
		out = FileConfig{}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&out); err != nil {
			return fmt.Errorf("override %s: %s", path, errtext.OneLine(err))
		}
	}
	if err := out.validate(); err != nil {
		return fmt.Errorf("training config after overrides %q: %s", overrides, errtext.OneLine(err))
	}
	*fc = out
	return nil
}

// setPath sets node[keys...] = v; where is the path walked so far, for errors.
func setPath(node any, keys []string, v any, where string) error {
	key := keys[0]
	at := strings.TrimPrefix(where+"."+key, ".")
	switch n := node.(type) {
	case map[string]any:
		if len(keys) == 1 {
			n[key] = v
			return nil
		}
		child, ok := n[key]
		if !ok || child == nil {
			child = map[string]any{}
			n[key] = child
		}
		return setPath(child, keys[1:], v, at)
	case []any: // phases: a phase by name, or * for all
		if len(keys) == 1 {
			return fmt.Errorf("%s: a list entry is replaced field by field (e.g. %s.lr)", at, at)
		}
		found := false
		for _, e := range n {
			em, ok := e.(map[string]any)
			if !ok {
				continue
			}
			if key == "*" || fmt.Sprint(em["name"]) == key {
				found = true
				if err := setPath(em, keys[1:], v, at); err != nil {
					return err
				}
			}
		}
		if !found {
			return fmt.Errorf("%s: no entry named %q in %s", at, key, where)
		}
		return nil
	}
	return fmt.Errorf("%s: %s is not a section", at, where)
}
