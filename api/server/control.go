// This file owns the handlers that control running things: stop, start,
// restart, signal and forget one command, stop every command of a
// workspace, and restart or signal a pipeline run.

package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

func (s *Server) stopCommand(w http.ResponseWriter, r *http.Request) error {
	return s.commandOp(w, r, s.eng.StopCommand)
}

func (s *Server) startCommand(w http.ResponseWriter, r *http.Request) error {
	return s.commandOp(w, r, s.eng.StartCommand)
}

func (s *Server) restartCommand(w http.ResponseWriter, r *http.Request) error {
	return s.commandOp(w, r, s.eng.RestartCommand)
}

func (s *Server) removeCommand(w http.ResponseWriter, r *http.Request) error {
	return s.commandOp(w, r, s.eng.RemoveCommand)
}

func (s *Server) commandOp(w http.ResponseWriter, r *http.Request,
	op func(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)) error {
	info, err := op(r.Context(), r.PathValue("ws"), r.PathValue("cmd"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) signalCommand(w http.ResponseWriter, r *http.Request) error {
	req, sig, err := s.signalRequest(r)
	if err != nil {
		return err
	}
	if req.Node != "" {
		return api.NewError(api.CodeInvalid, "node", "node applies to pipeline runs, not to commands")
	}
	info, err := s.eng.SignalCommand(r.Context(), r.PathValue("ws"), r.PathValue("cmd"), sig)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) stopCommands(w http.ResponseWriter, r *http.Request) error {
	out, err := s.eng.StopCommands(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) restartPipeline(w http.ResponseWriter, r *http.Request) error {
	info, err := s.eng.RestartPipeline(r.Context(), r.PathValue("run"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) signalPipeline(w http.ResponseWriter, r *http.Request) error {
	req, sig, err := s.signalRequest(r)
	if err != nil {
		return err
	}
	info, err := s.eng.SignalPipeline(r.Context(), r.PathValue("run"), req.Node, sig)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

// signalRequest reads the signal (and node) from the body or the query;
// both may not name a signal at once.
func (s *Server) signalRequest(r *http.Request) (api.SignalRequest, syscall.Signal, error) {
	var req api.SignalRequest
	data, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBodyBytes+1))
	if err != nil {
		return req, 0, api.NewError(api.CodeMalformed, "", "reading the request body: "+err.Error())
	}
	if int64(len(data)) > s.opts.MaxBodyBytes {
		return req, 0, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeMalformed,
			Message: fmt.Sprintf("request body is larger than the limit of %d bytes", s.opts.MaxBodyBytes)}
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := messages.DecodeSpec(data, &req); err != nil {
			return req, 0, fmt.Errorf("request body: %w", err)
		}
	}
	q := r.URL.Query()
	for _, name := range []string{"signal", "node"} {
		if !q.Has(name) {
			continue
		}
		v := q.Get(name)
		field := &req.Signal
		if name == "node" {
			field = &req.Node
		}
		if *field != "" && *field != v {
			return req, 0, api.NewError(api.CodeInvalid, name, fmt.Sprintf("%s is given twice: %q in the body and %q in the query", name, *field, v))
		}
		*field = v
	}
	if req.Signal == "" {
		return req, 0, api.NewError(api.CodeInvalid, "signal", "signal is required (a name such as TERM or a number such as 9)")
	}
	sig, err := messages.ParseSignal(req.Signal)
	if err != nil {
		return req, 0, api.NewError(api.CodeInvalid, "signal", err.Error())
	}
	return req, sig, nil
}
