package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shipote/shipote/messages"
)

// TestWorkspacePages walks GET /v1/workspaces a page at a time through the
// client (the cursor comes in the Link header), with and without a label
// prefix, and checks every bad paging parameter is refused by name.
func TestWorkspacePages(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	var ids []string
	for _, label := range []string{"web-1", "db", "web-2", "web-3", "job"} {
		ws, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: label})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ws.ID)
	}
	walk := func(q messages.ListQuery) []string {
		var labels []string
		for page := 0; ; page++ {
			list, next, err := d.c.WorkspacePage(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if q.Limit > 0 && len(list) > q.Limit {
				t.Fatalf("page of %d, limit %d", len(list), q.Limit)
			}
			for _, w := range list {
				labels = append(labels, w.Spec.Label)
			}
			if next == "" {
				return labels
			}
			if page > 10 {
				t.Fatal("no last page")
			}
			q.After = next
		}
	}
	if got := strings.Join(walk(messages.ListQuery{Limit: 2}), ","); got != "web-1,db,web-2,web-3,job" {
		t.Errorf("pages of 2: %s", got)
	}
	if got := strings.Join(walk(messages.ListQuery{Limit: 1, LabelPrefix: "web-"}), ","); got != "web-1,web-2,web-3" {
		t.Errorf("pages of 1 with prefix web-: %s", got)
	}
	if got := strings.Join(walk(messages.ListQuery{After: ids[2]}), ","); got != "web-3,job" {
		t.Errorf("after the third: %s", got)
	}
	resp, _ := d.raw(t, http.MethodGet, "/v1/workspaces?limit=2&label_prefix=web-", "")
	if link := resp.Header.Get("Link"); link != `</v1/workspaces?after=`+ids[2]+`&label_prefix=web-&limit=2>; rel="next"` {
		t.Errorf("Link: %q", link)
	}
	resp, _ = d.raw(t, http.MethodGet, "/v1/workspaces?limit=10", "")
	if link := resp.Header.Get("Link"); link != "" {
		t.Errorf("Link on the last page: %q", link)
	}
	for _, tt := range []struct{ query, want string }{
		{"limit=-1", "limit must be an integer ≥ 0"},
		{"limit=x", "limit must be an integer ≥ 0"},
		{"after=web-1", `after \"web-1\" is not an ID`},
		{"page=2", "page"},
	} {
		resp, body := d.raw(t, http.MethodGet, "/v1/workspaces?"+tt.query, "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tt.query, resp.StatusCode, body, tt.want)
		}
	}
}
