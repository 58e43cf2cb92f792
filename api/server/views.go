// This file writes lists of workspace views from their cached encodings.

package server

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/shipote/shipote/messages"
)

// listCache keeps the last whole list answered: the views it was made of
// and its body. A list whose views are the very same (each workspace's
// view is replaced, never changed, when its figures change) is answered
// with that body, as a static file would be: one comparison of pointers
// per workspace instead of joining every encoding again. The zero value
// is an empty cache; it is safe for concurrent use.
type listCache struct {
	last atomic.Pointer[listAnswer]
}

// listAnswer is one list's views and the body made of them; neither
// changes once stored.
type listAnswer struct {
	views []*messages.WorkspaceView
	body  []byte
}

// body returns the answer to views: the cached one when it was made of
// the same views, else one joined now (and cached). A nil cache caches
// nothing. The body is shared and must not be modified.
func (c *listCache) body(views []*messages.WorkspaceView) ([]byte, error) {
	if c != nil {
		if a := c.last.Load(); a != nil && slices.Equal(a.views, views) {
			return a.body, nil
		}
	}
	body, err := joinViews(views)
	if err != nil {
		return nil, err
	}
	if c != nil {
		// Concurrent lists may store in any order: a body replaced by an
		// older one only costs the next list a join.
		c.last.Store(&listAnswer{views: slices.Clone(views), body: body})
	}
	return body, nil
}

// joinViews makes a list's body, "[" the encodings joined by "," "]\n":
// the bytes writeJSON gives the views' infos.
func joinViews(views []*messages.WorkspaceView) ([]byte, error) {
	size := len("[]\n") + max(len(views)-1, 0)
	for _, v := range views {
		b, err := v.JSON()
		if err != nil {
			return nil, err
		}
		size += len(b)
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, v := range views {
		if i > 0 {
			body = append(body, ',')
		}
		b, _ := v.JSON()
		body = append(body, b...)
	}
	return append(body, "]\n"...), nil
}

// writeViews answers a list of workspace views: the same bytes as
// writeJSON of their infos, made of each view's encoding (made once, when
// the workspace published the view) with no encoder on the request's
// path, and written at once with its Content-Length. cache, when not nil,
// keeps the body for the next list of the same views.
func writeViews(w http.ResponseWriter, views []*messages.WorkspaceView, cache *listCache) error {
	body, err := cache.body(views)
	if err != nil {
		// Not expected of the API's own types: writeJSON says so.
		infos := make([]messages.WorkspaceInfo, len(views))
		for i, v := range views {
			infos[i] = v.Info()
		}
		return writeJSON(w, http.StatusOK, infos)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // an error: the client is gone, the answer has begun
	return nil
}
