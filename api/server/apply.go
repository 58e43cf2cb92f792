// This file serves declarative operation: POST /v1/apply (apply, dry run,
// down) and POST /v1/workspaces/{ws}/commands/{cmd}/scale.

package server

import (
	"net/http"

	"github.com/shipote/shipote/messages"
)

// applyRoutes are the routes of this file, added to the route table.
func applyRoutes() []route {
	return []route{
		{"POST /v1/apply", nil, (*Server).apply},
		{"POST /v1/workspaces/{ws}/commands/{cmd}/scale", nil, (*Server).scale},
	}
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	var req messages.ApplyRequest
	if err := s.decodeBody(r, &req); err != nil {
		return err
	}
	res, err := s.eng.Apply(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) error {
	var req messages.ScaleRequest
	if err := s.decodeBody(r, &req); err != nil {
		return err
	}
	p, err := s.eng.Scale(r.Context(), r.PathValue("ws"), r.PathValue("cmd"), req.Instances)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}
