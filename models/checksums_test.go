package models

import (
	"bytes"
	"encoding/json"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyCheckpoint copies the files of checkpoint dir into a new folder.
func copyCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "ckpt")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// editConfig changes config.json of the checkpoint at dir as a user editing it by
// hand would: the first style class name and the first channel of the mean.
func editConfig(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["classes"].(map[string]any)["style"].([]any)[0] = "Renamed_Style"
	m["mean"].([]any)[0] = 0.5
	out, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointChecksums: SaveCheckpoint writes checksums.json covering every file; a file
// edited or damaged afterwards is refused with one line naming it, however consistent the edit
// (a hand-edited config.json parses and validates; a data edit with its CRC fixed up in
// variables.json and that file's checksum fixed up too is still caught by variables.bin's
// SHA-256); checksums.json itself must be well formed and complete.
func TestCheckpointChecksums(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 21)
	good := filepath.Join(t.TempDir(), "good")
	if err := SaveCheckpoint(ctx, cfg, good); err != nil {
		t.Fatal(err)
	}
	sums, err := readChecksums(good)
	if err != nil || sums == nil || len(sums.Files) != 3 {
		t.Fatalf("checksums.json: %+v, %v; want all three files covered", sums, err)
	}
	if _, _, err := LoadCheckpoint(good); err != nil {
		t.Fatal(err)
	}
	rewriteSums := func(t *testing.T, d string, fn func(*Checksums)) {
		s, err := readChecksums(d)
		if err != nil {
			t.Fatal(err)
		}
		fn(s)
		b, _ := json.MarshalIndent(s, "", " ")
		if err := os.WriteFile(filepath.Join(d, ChecksumsFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, file, want string
		corrupt          func(t *testing.T, d string)
	}{
		{"hand-edited config", ConfigFile, "edited or damaged", editConfig},
		{"same-size config edit", ConfigFile, "SHA-256 differs", func(t *testing.T, d string) {
			editFile(t, d, ConfigFile, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"lstm_hidden": 16`), []byte(`"lstm_hidden": 17`), 1)
			})
		}},
		{"reformatted index", VariablesFile, "edited or damaged", func(t *testing.T, d string) {
			editFile(t, d, VariablesFile, func(b []byte) []byte { return append(b, '\n') })
		}},
		{"data edit with CRC and index checksum fixed up", DataFile, "SHA-256 differs", func(t *testing.T, d string) {
			data, _ := os.ReadFile(filepath.Join(d, DataFile))
			raw, _ := os.ReadFile(filepath.Join(d, VariablesFile))
			var index VariablesIndex
			if err := json.Unmarshal(raw, &index); err != nil {
				t.Fatal(err)
			}
			e := &index.Variables[len(index.Variables)/2]
			data[e.Offset] ^= 0x01
			e.CRC32 = crc32.ChecksumIEEE(data[e.Offset : e.Offset+e.Bytes])
			raw, _ = json.MarshalIndent(&index, "", " ")
			if err := os.WriteFile(filepath.Join(d, DataFile), data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, VariablesFile), raw, 0o644); err != nil {
				t.Fatal(err)
			}
			rewriteSums(t, d, func(s *Checksums) { s.Files[VariablesFile] = hashOf(raw) })
		}},
		{"broken checksums", ChecksumsFile, "not valid JSON", func(t *testing.T, d string) {
			editFile(t, d, ChecksumsFile, func(b []byte) []byte { return b[:len(b)/2] })
		}},
		{"incomplete checksums", ChecksumsFile, "does not cover variables.bin", func(t *testing.T, d string) {
			rewriteSums(t, d, func(s *Checksums) { delete(s.Files, DataFile) })
		}},
		{"foreign entry", ChecksumsFile, `"notes.txt"`, func(t *testing.T, d string) {
			rewriteSums(t, d, func(s *Checksums) { s.Files["notes.txt"] = s.Files[ConfigFile] })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyCheckpoint(t, good)
			tc.corrupt(t, d)
			_, _, err := LoadCheckpoint(d)
			if err == nil {
				t.Fatal("LoadCheckpoint accepted it")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, d+": "+tc.file+": ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q should be one line naming %s/%s and %q", msg, d, tc.file, tc.want)
			}
		})
	}
}

// TestCheckpointWithoutChecksums: a checkpoint saved before checksums.json existed loads, with
// one warning per directory; saving over it adds checksums.json.
func TestCheckpointWithoutChecksums(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 22)
	good := filepath.Join(t.TempDir(), "good")
	if err := SaveCheckpoint(ctx, cfg, good); err != nil {
		t.Fatal(err)
	}
	old := copyCheckpoint(t, good)
	if err := os.Remove(filepath.Join(old, ChecksumsFile)); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	for range 2 {
		if _, _, err := LoadCheckpoint(old); err != nil {
			t.Fatalf("an old checkpoint without %s: %v", ChecksumsFile, err)
		}
	}
	if n := strings.Count(logs.String(), "without "+ChecksumsFile); n != 1 {
		t.Errorf("want one warning for two loads, got %d:\n%s", n, logs.String())
	}
	if err := SaveCheckpoint(ctx, cfg, old); err != nil {
		t.Fatal(err)
	}
	if s, err := readChecksums(old); err != nil || s == nil {
		t.Errorf("re-saved checkpoint: checksums %v, %v", s, err)
	}
}
