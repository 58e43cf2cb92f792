// This file decodes specs strictly from JSON or YAML: unknown fields (also
// known ones spelled in another case), duplicate keys, extra documents and
// trailing data are errors.

package messages

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// ErrMalformed is wrapped by decoding errors.
var ErrMalformed = errors.New("malformed spec")

var errEmpty = errors.New("empty document")

// DecodeJSON decodes data into v, rejecting unknown fields, duplicate keys
// ("spec.label: duplicate key") and trailing data. Field names must match
// exactly (encoding/json alone would accept "Label" for "label").
func DecodeJSON(data []byte, v any) error {
	if err := decodeJSON(data, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// DecodeSpec decodes a spec written as JSON or YAML into v, strictly. YAML is
// read as YAML 1.2: on, off, yes and no are strings, not booleans.
func DecodeSpec(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: %w", ErrMalformed, errEmpty)
	}
	if looksLikeJSON(trimmed) {
		return DecodeJSON(trimmed, v)
	}
	js, err := yamlToJSON(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return DecodeJSON(js, v)
}

// looksLikeJSON reports whether b is a JSON object rather than a YAML flow
// mapping such as {label: x}.
func looksLikeJSON(b []byte) bool {
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	rest := bytes.TrimLeft(b[1:], " \t\r\n")
	return len(rest) > 0 && (rest[0] == '"' || rest[0] == '}')
}

// decodeJSON is DecodeJSON without the ErrMalformed wrapping.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmpty
		}
		return jsonErr(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	if err := duplicateKeyError(data); err != nil {
		return err
	}
	if t := reflect.TypeOf(v); t != nil {
		if err := checkFields(raw, t, ""); err != nil {
			return err
		}
	}
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return typeErrAt(raw, err)
	}
	return nil
}

func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Errorf("%s: expected %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("expected %s, got %s", te.Type, te.Value)
	}
	return err
}

// shaper is implemented by types with a custom JSON form whose object form
// has the fields of the struct jsonShape returns; checkFields checks those.
type shaper interface{ jsonShape() any }

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	shaperType      = reflect.TypeFor[shaper]()
)

// checkFields walks raw (a value decoded into any) along type t and returns
// an error naming the first object key, in sorted order, that is not
// exactly a JSON field name of the struct it is decoded into.
func checkFields(raw any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(shaperType) {
		if _, ok := raw.(map[string]any); !ok {
			return nil
		}
		s := reflect.Zero(t).Interface().(shaper)
		return checkFields(raw, reflect.TypeOf(s.jsonShape()), path)
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return nil // the decoder reports the type error
		}
		fields := jsonFields(t)
		for _, k := range sortedAnyKeys(m) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				sort.Strings(names)
				for _, name := range names {
					if strings.EqualFold(name, k) {
						return fmt.Errorf("unknown field %q (field names are case-sensitive; did you mean %q?)", p, name)
					}
				}
				return fmt.Errorf("unknown field %q", p)
			}
			if err := checkFields(m[k], ft, p); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		l, ok := raw.([]any)
		if !ok {
			return nil
		}
		for i, e := range l {
			if err := checkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			return nil
		}
		for _, k := range sortedAnyKeys(m) {
			if err := checkFields(m[k], t.Elem(), path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields returns the JSON field names of struct type t with their types,
// embedded structs' fields included.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := make(map[string]reflect.Type)
	addFields(t, out)
	fieldCache.Store(t, out)
	return out
}

func addFields(t reflect.Type, out map[string]reflect.Type) {
	embedded := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, embedded)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	// Fields of the outer struct win over promoted ones.
	for name, ft := range embedded {
		if _, ok := out[name]; !ok {
			out[name] = ft
		}
	}
}

func sortedAnyKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// yamlToJSON converts a single YAML document to JSON. Anchors, aliases and
// merge keys are resolved; duplicate keys and a second document are errors.
func yamlToJSON(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmpty
		}
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, err
	default:
		return nil, fmt.Errorf("line %d: more than one YAML document; a spec file holds one", next.Line)
	}
	timestampsAsStrings(&doc)
	var v any
	if err := doc.Decode(&v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errEmpty
	}
	j, err := jsonable(v, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

// timestampsAsStrings keeps date-like scalars such as 2001-12-14 as the text
// they are written as: no spec field is a time.
func timestampsAsStrings(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		timestampsAsStrings(c)
	}
}

// jsonable converts a value decoded from YAML into one json.Marshal accepts.
func jsonable(v any, path string) (any, error) {
	at := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			j, err := jsonable(e, at(k))
			if err != nil {
				return nil, err
			}
			out[k] = j
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			var ks string
			switch k := k.(type) {
			case string:
				ks = k
			case int, int64, uint64, float64, bool:
				ks = fmt.Sprint(k)
			default:
				return nil, fmt.Errorf("%s: a key of type %T is not allowed", at("?"), k)
			}
			j, err := jsonable(e, at(ks))
			if err != nil {
				return nil, err
			}
			out[ks] = j
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			j, err := jsonable(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%s: %v is not a finite number", path, x)
		}
		return x, nil
	case nil, string, bool, int, int64, uint64:
		return x, nil
	default:
		return nil, fmt.Errorf("%s: a value of type %T is not allowed", path, v)
	}
}

// HasDuplicateKey reports whether an object in the JSON document data has
// two members with the same name (after unescaping). It is meant for data
// already known to be valid JSON and never fails; on invalid JSON its answer
// is unspecified. It is fast enough to run on every state file load.
func HasDuplicateKey(data []byte) bool {
	dup, _ := ScanKeys(data, nil)
	return dup
}

// NameSet is the set of JSON field names of the structs a type reaches, for
// ScanKeys.
type NameSet struct {
	exact  map[string]bool
	folded map[string]bool
	// lower is true when every name is lower-case ASCII: then only a key
	// with an upper-case or non-ASCII byte can match one ignoring case.
	lower bool
}

// NewNameSet returns the JSON field names of every struct reachable from v's
// type (through pointers, slices, arrays, maps and declared shapes).
func NewNameSet(v any) *NameSet {
	ns := &NameSet{exact: make(map[string]bool), folded: make(map[string]bool), lower: true}
	seen := make(map[reflect.Type]bool)
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if seen[t] {
			return
		}
		seen[t] = true
		if t.Implements(shaperType) {
			walk(reflect.TypeOf(reflect.Zero(t).Interface().(shaper).jsonShape()))
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for name, ft := range jsonFields(t) {
			ns.exact[name] = true
			if mayFold([]byte(name)) {
				ns.lower = false
			}
			ns.folded[string(foldName([]byte(name)))] = true
			walk(ft)
		}
	}
	if t := reflect.TypeOf(v); t != nil {
		walk(t)
	}
	return ns
}

// mayFold reports whether name has a byte that case folding can change
// into a lower-case ASCII one: an upper-case ASCII letter or a non-ASCII
// byte (the Kelvin sign folds to k).
func mayFold(name []byte) bool {
	for _, c := range name {
		if ('A' <= c && c <= 'Z') || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// foldName folds a name the way encoding/json matches names: two names
// match when their folds are equal (bytes.EqualFold).
func foldName(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return out
}

// ScanKeys reports, in one pass over the JSON document data, whether an
// object has two members with the same name (after unescaping), and whether
// a member name is not one of names but matches one of them ignoring case
// (encoding/json would read "Label" into the field label). names may be nil.
// Like HasDuplicateKey, it is meant for valid JSON and never fails.
func ScanKeys(data []byte, names *NameSet) (duplicate, caseVariant bool) {
	type frame struct {
		obj  bool
		keys [][]byte
	}
	var stack []frame
	depth := 0 // frames in use; stack[depth:] are kept for reuse
	expectKey := false
	for i := 0; i < len(data); {
		switch data[i] {
		case '{', '[':
			obj := data[i] == '{'
			if depth == len(stack) {
				stack = append(stack, frame{})
			}
			stack[depth].obj = obj
			stack[depth].keys = stack[depth].keys[:0]
			depth++
			expectKey = obj
			i++
		case '}', ']':
			if depth > 0 {
				depth--
			}
			expectKey = false
			i++
		case ',':
			expectKey = depth > 0 && stack[depth-1].obj
			i++
		case '"':
			end, escaped := stringEnd(data, i+1)
			if expectKey && depth > 0 {
				key := data[i+1 : end]
				if escaped {
					key = unescapeKey(data[i : end+1])
				}
				f := &stack[depth-1]
				for _, k := range f.keys {
					if bytes.Equal(k, key) {
						return true, caseVariant
					}
				}
				f.keys = append(f.keys, key)
				if names != nil && !caseVariant && (!names.lower || mayFold(key)) &&
					!names.exact[string(key)] && names.folded[string(foldName(key))] {
					caseVariant = true
				}
				expectKey = false
			}
			i = end + 1
		default:
			i++
		}
	}
	return false, caseVariant
}

// stringEnd returns the index of the quote that closes the JSON string whose
// contents start at data[start], or len(data) when it is not closed, and
// whether the string holds an escape.
func stringEnd(data []byte, start int) (end int, escaped bool) {
	i := start
	for {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return len(data), escaped
		}
		q := i + j
		n := 0 // backslashes just before the quote
		for k := q - 1; k >= start && data[k] == '\\'; k-- {
			n++
		}
		if !escaped && bytes.IndexByte(data[i:q], '\\') >= 0 {
			escaped = true
		}
		if n%2 == 0 {
			return q, escaped
		}
		i = q + 1
	}
}

// unescapeKey returns the contents of the quoted JSON string quoted; an
// invalid string is returned as is (the decoder reports it).
func unescapeKey(quoted []byte) []byte {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return quoted
	}
	return []byte(s)
}

// duplicateKeyError returns an error naming the path of the first duplicate
// member name in the JSON document data, e.g. "spec.label: duplicate key",
// or nil when there is none (or data is not valid JSON).
func duplicateKeyError(data []byte) error {
	if !HasDuplicateKey(data) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	path, found, err := walkDuplicate(dec, "")
	switch {
	case err != nil || !found:
		return nil
	case path == "":
		return errors.New("duplicate key")
	}
	return fmt.Errorf("%s: duplicate key", path)
}

// walkDuplicate reads one value from dec and returns the path of the first
// member that repeats a name of its object. It stops at the first error.
func walkDuplicate(dec *json.Decoder, path string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	switch tok {
	case json.Delim('{'):
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", false, err
			}
			key, _ := tok.(string)
			p := key
			if path != "" {
				p = path + "." + key
			}
			if seen[key] {
				return p, true, nil
			}
			seen[key] = true
			if dp, found, err := walkDuplicate(dec, p); found || err != nil {
				return dp, found, err
			}
		}
		if _, err := dec.Token(); err != nil { // '}'
			return "", false, err
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if dp, found, err := walkDuplicate(dec, fmt.Sprintf("%s[%d]", path, i)); found || err != nil {
				return dp, found, err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return "", false, err
		}
	}
	return "", false, nil
}
