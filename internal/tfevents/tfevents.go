// Package tfevents writes TensorBoard event files (scalars only): what TensorBoard's
// EventAccumulator, tf.summary and torch.utils.tensorboard read.
//
// A file is a sequence of TFRecords, each
//
//	uint64 length (little endian) · uint32 masked_crc32c(length bytes) · data · uint32 masked_crc32c(data)
//
// where masked_crc32c(x) = ((c >> 15) | (c << 17)) + 0xa282ead8 with c the CRC-32C (Castagnoli)
// of x, and each record's data is a tensorflow.Event protobuf (tensorflow/core/util/event.proto):
// the first has file_version "brain.Event:2", the others a Summary of simple_value scalars
// (tensorflow/core/framework/summary.proto) or a SessionLog.
//
// The protobufs are encoded field by field with google.golang.org/protobuf/encoding/protowire:
// the four messages used (Event, Summary, Summary.Value, SessionLog) have nine fields between
// them, and no Go module with TensorFlow's generated types, or a kept TensorBoard writer, is
// served by the Go module proxy (github.com/tensorflow/tensorflow/tensorflow/go is not a
// go-gettable module; github.com/orktes/go-tensorboard is refused).
package tfevents

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FilePrefix starts the name of every event file (TensorBoard looks for "tfevents" in names).
const FilePrefix = "events.out.tfevents."

// Field numbers of tensorflow.Event, Summary, Summary.Value and SessionLog.
const (
	eventWallTime    = 1 // double
	eventStep        = 2 // int64
	eventFileVersion = 3 // string
	eventSummary     = 5 // Summary
	eventSessionLog  = 6 // SessionLog

	summaryValue = 1 // repeated Summary.Value

	valueTag         = 1 // string
	valueSimpleValue = 2 // float

	sessionLogStatus = 1 // enum: START = 1
	sessionLogMsg    = 3 // string

	sessionStart = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is TFRecord's masked CRC-32C of b.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// Writer appends events to one new event file. Its methods are safe for concurrent use; an
// error is sticky (returned by every later call, and by Close).
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	path string
	err  error
	now  func() time.Time
}

// Create starts a new event file in dir (created if needed), named like TensorFlow's
// (events.out.tfevents.<unix seconds>.<host>.<pid>.<nanoseconds>, so two writers never share a
// file), and writes its file_version event.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard events: %w", err)
	}
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' {
			return '_'
		}
		return r
	}, host)
	now := time.Now()
	name := fmt.Sprintf("%s%d.%s.%d.%09d", FilePrefix, now.Unix(), host, os.Getpid(), now.Nanosecond())
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tensorboard events: %w", err)
	}
	w := &Writer{f: f, w: bufio.NewWriter(f), path: path, now: time.Now}
	ev := w.event(0)
	ev = protowire.AppendTag(ev, eventFileVersion, protowire.BytesType)
	ev = protowire.AppendString(ev, "brain.Event:2")
	w.record(ev)
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// event starts an Event with the wall time and step.
func (w *Writer) event(step int64) []byte {
	t := w.now()
	var b []byte
	b = protowire.AppendTag(b, eventWallTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(float64(t.UnixNano())/1e9))
	if step != 0 {
		b = protowire.AppendTag(b, eventStep, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(step))
	}
	return b
}

// record writes data as one TFRecord (the caller holds mu or owns w).
func (w *Writer) record(data []byte) {
	if w.err != nil {
		return
	}
	var head [12]byte
	binary.LittleEndian.PutUint64(head[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(head[8:], MaskedCRC(head[:8]))
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], MaskedCRC(data))
	for _, p := range [][]byte{head[:], data, tail[:]} {
		if _, err := w.w.Write(p); err != nil {
			w.err = fmt.Errorf("tensorboard events %s: %w", w.path, err)
			return
		}
	}
}

// Scalars writes one event at step holding a scalar per tag (tags in the given order; NaN and
// ±Inf are written as they are, as TensorBoard shows them).
func (w *Writer) Scalars(step int64, tags []string, values []float64) error {
	if len(tags) != len(values) {
		return fmt.Errorf("tensorboard events: %d tags for %d values", len(tags), len(values))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var sum []byte
	for i, tag := range tags {
		var v []byte
		v = protowire.AppendTag(v, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, tag)
		v = protowire.AppendTag(v, valueSimpleValue, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(float32(values[i])))
		sum = protowire.AppendTag(sum, summaryValue, protowire.BytesType)
		sum = protowire.AppendBytes(sum, v)
	}
	return w.message(step, eventSummary, sum)
}

// SessionStart writes a SessionLog START event at step: TensorBoard then discards the events
// of earlier files whose step is above it (a resumed run redoing steps after its checkpoint).
func (w *Writer) SessionStart(step int64, msg string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sl []byte
	sl = protowire.AppendTag(sl, sessionLogStatus, protowire.VarintType)
	sl = protowire.AppendVarint(sl, sessionStart)
	if msg != "" {
		sl = protowire.AppendTag(sl, sessionLogMsg, protowire.BytesType)
		sl = protowire.AppendString(sl, msg)
	}
	return w.message(step, eventSessionLog, sl)
}

// message writes an Event at step holding the serialized message msg in field (the caller
// holds mu).
func (w *Writer) message(step int64, field protowire.Number, msg []byte) error {
	ev := w.event(step)
	ev = protowire.AppendTag(ev, field, protowire.BytesType)
	ev = protowire.AppendBytes(ev, msg)
	w.record(ev)
	return w.err
}

// Flush writes buffered events to the file.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		if err := w.w.Flush(); err != nil {
			w.err = fmt.Errorf("tensorboard events %s: %w", w.path, err)
		}
	}
	return w.err
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tensorboard events %s: %w", w.path, cerr)
	}
	return err
}
