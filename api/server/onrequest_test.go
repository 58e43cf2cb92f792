package server_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api/server"
)

func TestOnRequestSeesEveryRequest(t *testing.T) {
	eng := startEngine(t, shipote.Config{})
	var n atomic.Int64
	h := server.New(eng, server.Options{OnRequest: func() { n.Add(1) }}).Handler()
	for i, path := range []string{"/v1/version", "/v1/workspaces", "/no/such/route"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if got := n.Load(); got != int64(i+1) {
			t.Fatalf("after GET %s (status %d): OnRequest called %d times, want %d", path, rec.Code, got, i+1)
		}
	}
}
