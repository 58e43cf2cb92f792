package server

import "testing"

func TestWithNode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"id":"1"}`, `{"node":"a","id":"1"}` + "\n"},
		{`{}`, `{"node":"a"}` + "\n"},
		{` [ {"id":"1"}, {} ] `, `[{"node":"a","id":"1"},{"node":"a"}]` + "\n"},
		{`[]`, "[]\n"},
		{`"text"`, `"text"`},
		{``, ``},
		{`[1,2]`, "[1,2]\n"},
		{`[{"broken"`, `[{"broken"`},
	} {
		if got := string(withNode([]byte(tc.in), "a")); got != tc.want {
			t.Errorf("withNode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestItemID(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"01ABC","spec":{}}`: "01ABC",
		`{"spec":{},"id":"01XYZ"}`: "01XYZ",
		`{"id":"a\"b","x":1}`:      `a"b`,
		`{"x":1}`:                  "",
		`not json`:                 "",
	} {
		if got := itemID([]byte(in)); got != want {
			t.Errorf("itemID(%s) = %q, want %q", in, got, want)
		}
	}
}
