package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

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

func TestFollowingAndTapping(t *testing.T) {
	for _, tc := range []struct {
		url          string
		follow, taps bool
	}{
		{"/v1/events", false, false},
		{"/v1/events?follow", true, false},
		{"/v1/events?follow=1", true, false},
		{"/v1/events?follow=TRUE", true, false},
		{"/v1/events?follow=t", true, false},
		{"/v1/events?follow=0", false, false},
		{"/v1/events?follow=nope", false, false},
		// A run started with tap=1 answers a whole object: not a tap.
		{"/v1/workspaces/w/pipelines?tap=true", false, false},
		{"/v1/pipelines/r/tap", false, true},
		{"/v1/pipelines/r/tap?node=gen", false, true},
		{"/v1/workspaces/w/tap", false, false},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.url, nil)
		if got := following(r); got != tc.follow {
			t.Errorf("following(%s) = %v", tc.url, got)
		}
		if got := tapping(r); got != tc.taps {
			t.Errorf("tapping(%s) = %v", tc.url, got)
		}
	}
}

// TestRewriteWorkspace: the workspace of a path is replaced by its ID and
// the rest of the path keeps its escaping (a pipeline node's command is
// one segment, "pipeline%2Fnode").
func TestRewriteWorkspace(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/workspaces/taps/commands/big%2Fsum/logs?tail=1": "/v1/workspaces/01ID/commands/big%2Fsum/logs?tail=1",
		"/v1/workspaces/taps@b":                              "/v1/workspaces/01ID",
		"/v1/workspaces/web/commands/hello":                  "/v1/workspaces/01ID/commands/hello",
	} {
		r := httptest.NewRequest(http.MethodGet, in, nil)
		rewriteWorkspace(r, "01ID")
		if got := r.URL.RequestURI(); got != want {
			t.Errorf("rewriteWorkspace(%s) = %s, want %s", in, got, want)
		}
	}
}
