// This file writes lists of workspace views from their cached encodings.

package server

import (
	"net/http"
	"strconv"

	"github.com/shipote/shipote/messages"
)

// writeViews answers a list of workspace views: the same bytes as
// writeJSON of their infos, written straight from each view's encoding
// (made once, when the workspace published the view) with no whole-body
// buffer and no encoder on the request's path.
func writeViews(w http.ResponseWriter, views []*messages.WorkspaceView) error {
	parts := make([][]byte, len(views))
	size := len("[]\n")
	for i, v := range views {
		b, err := v.JSON()
		if err != nil {
			// Not expected of the API's own types: writeJSON says so.
			infos := make([]messages.WorkspaceInfo, len(views))
			for i, v := range views {
				infos[i] = v.Info()
			}
			return writeJSON(w, http.StatusOK, infos)
		}
		parts[i] = b
		size += len(b)
	}
	if len(parts) > 1 {
		size += len(parts) - 1 // commas
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	sep := []byte{'['}
	for _, b := range parts {
		if _, err := w.Write(sep); err != nil {
			return nil // the client is gone; the answer has begun
		}
		if _, err := w.Write(b); err != nil {
			return nil
		}
		sep[0] = ','
	}
	if len(parts) == 0 {
		_, _ = w.Write([]byte{'['})
	}
	_, _ = w.Write([]byte("]\n"))
	return nil
}
