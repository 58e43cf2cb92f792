// This file separates the members of a JSON value that a Go type does not
// know from those it does, and merges them back into an encoding of the
// value. The state file uses it so that a newer or older writer's members
// survive a load and a save; user specs stay strict (DecodeJSON).

package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// DecodeJSONKeepUnknown decodes data into v like DecodeJSON (duplicate keys
// are errors, wherever they are), except that
// object members that v's type does not know, at any depth, are not errors:
// they are left out of v and returned as extra, a JSON overlay that
// MergeUnknown writes back. extra is nil when every member is known.
//
// The overlay has the shape of the value: an object holds the unknown
// members of the matching object, and under a known member's name the
// overlay of that member's value; an array holds, at index i, the overlay of
// element i (null for an element without unknown members, trailing nulls
// left out); a map's overlay holds its keys whose values have unknown
// members. Which members are known is decided by v's type, so a known name
// in the overlay always means "descend", never "unknown member". Values of
// unknown members are compacted.
//
// A member is known only when its name matches a field's JSON name exactly:
// "Label" is an unknown member, not the field label. A value whose type has
// its own JSON decoding is not looked into (except for the object form of a
// type that declares its shape).
func DecodeJSONKeepUnknown(data []byte, v any) (extra json.RawMessage, err error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil, fmt.Errorf("%w: decode into nil", ErrMalformed)
	}
	if !json.Valid(data) {
		// DecodeJSON says where the syntax is wrong.
		if err := DecodeJSON(data, v); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
	}
	if err := duplicateKeyError(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	known, extra, err := splitUnknown(bytes.TrimSpace(data), t, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := DecodeJSON(known, v); err != nil {
		return nil, err
	}
	if extra == nil {
		return nil, nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, extra); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return out.Bytes(), nil
}

// member is one member of a JSON object, in document order.
type member struct {
	key string
	val json.RawMessage
}

// objectMembers splits the JSON object data into its members in order. ok
// is false when data is not an object (or not valid JSON).
func objectMembers(data []byte) (members []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, isKey := tok.(string)
		if !isKey {
			return nil, false
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, false
		}
		members = append(members, member{key, val})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return members, true
}

// arrayElements splits the JSON array data into its elements. ok is false
// when data is not an array.
func arrayElements(data []byte) (elems []json.RawMessage, ok bool) {
	if len(data) == 0 || data[0] != '[' {
		return nil, false
	}
	if json.Unmarshal(data, &elems) != nil {
		return nil, false
	}
	return elems, true
}

// writeObject writes members as a JSON object.
func writeObject(members []member) json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(m.key) // a string always marshals
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(m.val)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// writeArray writes elems as a JSON array.
func writeArray(elems []json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// shapeOf returns the type whose fields describe t's JSON form when data is
// read into it, and whether t is looked into at all.
func shapeOf(t reflect.Type, data []byte) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(shaperType) {
		if len(data) == 0 || data[0] != '{' {
			return nil, false
		}
		return reflect.TypeOf(reflect.Zero(t).Interface().(shaper).jsonShape()), true
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		return nil, false
	}
	return t, true
}

// splitUnknown returns data without the members t does not know (known) and
// the overlay of those members (extra, nil when none). A value of the wrong
// JSON kind is left for the decoder to report.
func splitUnknown(data []byte, t reflect.Type, path string) (known, extra json.RawMessage, err error) {
	t, ok := shapeOf(t, data)
	if !ok {
		return data, nil, nil
	}
	switch t.Kind() {
	case reflect.Struct:
		members, ok := objectMembers(data)
		if !ok {
			return data, nil, nil
		}
		fields := jsonFields(t)
		var keep, unknown []member
		changed := false
		for _, m := range members {
			ft, isKnown := fields[m.key]
			if !isKnown {
				unknown = append(unknown, m)
				changed = true
				continue
			}
			k, x, err := splitUnknown(bytes.TrimSpace(m.val), ft, joinPath(path, m.key))
			if err != nil {
				return nil, nil, err
			}
			if x != nil {
				unknown = append(unknown, member{m.key, x})
				changed = true
			}
			keep = append(keep, member{m.key, k})
		}
		if !changed {
			return data, nil, nil
		}
		if len(unknown) > 0 {
			extra = writeObject(unknown)
		}
		return writeObject(keep), extra, nil
	case reflect.Slice, reflect.Array:
		elems, ok := arrayElements(data)
		if !ok {
			return data, nil, nil
		}
		var overlay []json.RawMessage
		for i, e := range elems {
			k, x, err := splitUnknown(bytes.TrimSpace(e), t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, nil, err
			}
			elems[i] = k
			if x != nil {
				for len(overlay) < i {
					overlay = append(overlay, json.RawMessage("null"))
				}
				overlay = append(overlay, x)
			}
		}
		if overlay == nil {
			return data, nil, nil
		}
		return writeArray(elems), writeArray(overlay), nil
	case reflect.Map:
		members, ok := objectMembers(data)
		if !ok {
			return data, nil, nil
		}
		var overlay []member
		for i, m := range members {
			k, x, err := splitUnknown(bytes.TrimSpace(m.val), t.Elem(), joinPath(path, m.key))
			if err != nil {
				return nil, nil, err
			}
			members[i].val = k
			if x != nil {
				overlay = append(overlay, member{m.key, x})
			}
		}
		if overlay == nil {
			return data, nil, nil
		}
		return writeObject(members), writeObject(overlay), nil
	}
	return data, nil, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// MergeUnknown writes the overlay extra (from DecodeJSONKeepUnknown) back
// into encoded, the JSON encoding of v: each unknown member is appended to
// the object it was read from, after the known members. An unknown member
// whose object is no longer in encoded (a known member now left out, an
// array now shorter) is dropped, and so is one whose name encoded already
// has. encoded is returned unchanged when extra is empty or null.
func MergeUnknown(encoded, extra json.RawMessage, v any) (json.RawMessage, error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil, errors.New("merge unknown members: nil value")
	}
	extra = bytes.TrimSpace(extra)
	if len(extra) == 0 {
		return encoded, nil
	}
	if !json.Valid(extra) {
		return nil, errors.New("merge unknown members: the overlay is not valid JSON")
	}
	return mergeUnknown(encoded, extra, t)
}

func mergeUnknown(enc, extra []byte, t reflect.Type) (json.RawMessage, error) {
	if len(extra) == 0 || string(extra) == "null" {
		return enc, nil
	}
	t, ok := shapeOf(t, enc)
	if !ok {
		return enc, nil
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		members, ok := objectMembers(enc)
		if !ok {
			return enc, nil
		}
		overlay, ok := objectMembers(extra)
		if !ok {
			return nil, fmt.Errorf("merge unknown members: overlay for an object is %s", clipJSON(extra))
		}
		var fields map[string]reflect.Type
		if t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		index := make(map[string]int, len(members))
		for i, m := range members {
			index[m.key] = i
		}
		for _, x := range overlay {
			ft, isKnown := fields[x.key]
			if t.Kind() == reflect.Map {
				ft, isKnown = t.Elem(), true
			}
			i, present := index[x.key]
			if isKnown && !present && recreatable(ft) {
				// A struct left out as zero (omitzero): its unknown
				// members go back into an object that decodes to zero.
				members = append(members, member{x.key, json.RawMessage("{}")})
				i, present = len(members)-1, true
				index[x.key] = i
			}
			switch {
			case isKnown && present:
				merged, err := mergeUnknown(members[i].val, bytes.TrimSpace(x.val), ft)
				if err != nil {
					return nil, err
				}
				members[i].val = merged
			case !isKnown && !present:
				index[x.key] = len(members)
				members = append(members, x)
			}
		}
		return writeObject(members), nil
	case reflect.Slice, reflect.Array:
		elems, ok := arrayElements(enc)
		if !ok {
			return enc, nil
		}
		overlay, ok := arrayElements(extra)
		if !ok {
			return nil, fmt.Errorf("merge unknown members: overlay for an array is %s", clipJSON(extra))
		}
		for i, x := range overlay {
			if i >= len(elems) {
				break
			}
			merged, err := mergeUnknown(elems[i], bytes.TrimSpace(x), t.Elem())
			if err != nil {
				return nil, err
			}
			elems[i] = merged
		}
		return writeArray(elems), nil
	}
	return enc, nil
}

// recreatable reports whether a member of type t that Marshal left out can
// be written back as an object holding only unknown members: a struct (not
// a pointer, which would then decode as non-nil) read from an object.
func recreatable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	shape, ok := shapeOf(t, []byte("{}"))
	return ok && shape.Kind() == reflect.Struct
}

// clipJSON returns b as a short string for an error message.
func clipJSON(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
