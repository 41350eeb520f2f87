// Package errtext formats error messages for artnet's one-line reports. It has its own folder
// because the CLI, the server, the runtime, the exporter, training, prediction, evaluation and
// weight import all print errors the same way and must not depend on each other for it.
package errtext

import "strings"

// OneLine is err's message on one line (see Fold); "" for a nil error.
func OneLine(err error) string {
	if err == nil {
		return ""
	}
	return Fold(err.Error())
}

// Fold folds a possibly multi-line message into one line: line breaks become "; " (errors.Join
// puts one error per line), or a space after a line ending in ":" (a heading such as yaml's
// "yaml: unmarshal errors:" followed by its indented items), and runs of white space become one
// space.
func Fold(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// Flat returns err itself when its message is one line already (so nothing changes), or an
// error whose message is OneLine(err) and that unwraps to err, so errors.Is and errors.As still
// see the causes.
func Flat(err error) error {
	if err == nil {
		return nil
	}
	if msg := OneLine(err); msg != err.Error() {
		return flatError{msg: msg, err: err}
	}
	return err
}

type flatError struct {
	msg string
	err error
}

func (e flatError) Error() string { return e.msg }
func (e flatError) Unwrap() error { return e.err }
