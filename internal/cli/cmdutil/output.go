// This file owns -o json: the flag, and the one exporter every command's
// JSON goes through.

package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/spf13/cobra"
)

// AddOutputFlag adds -o/--output to cmd; the only format is "json" ("" =
// the human form).
func AddOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().VarP(&enumValue{p: p, allowed: []string{"json"}}, "output", "o", "output format: json")
}

// WriteJSON writes v as indented JSON, HTML characters unescaped. A nil
// slice is written as [].
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(emptyIfNil(v))
}

// WriteJSONLine writes v as one line of compact JSON (NDJSON streams).
func WriteJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func emptyIfNil(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice && rv.IsNil() {
		return reflect.MakeSlice(rv.Type(), 0, 0).Interface()
	}
	return v
}

// enumValue is a string flag restricted to a set of values ("" allowed
// when it is the default).
type enumValue struct {
	p       *string
	allowed []string
}

func (e *enumValue) String() string { return *e.p }
func (e *enumValue) Type() string   { return "string" }

func (e *enumValue) Set(s string) error {
	for _, a := range e.allowed {
		if s == a {
			*e.p = s
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, quoteList(e.allowed))
}

// EnumVarP adds a string flag restricted to allowed; def is its default.
func EnumVarP(cmd *cobra.Command, p *string, name, short, def string, allowed []string, usage string) {
	*p = def
	cmd.Flags().VarP(&enumValue{p: p, allowed: allowed}, name, short, usage)
}

func quoteList(l []string) string {
	s := ""
	for i, a := range l {
		switch {
		case i == 0:
		case i == len(l)-1:
			s += " or "
		default:
			s += ", "
		}
		s += a
	}
	return s
}

// ShellQuote returns s as one POSIX shell word: as it is when it holds
// only characters no shell treats specially, else in single quotes.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
