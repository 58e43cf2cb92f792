// This file holds the client methods of declarative operation: POST
// /v1/apply (apply, dry run, down) and POST
// /v1/workspaces/{ws}/commands/{cmd}/scale.

package api

import (
	"context"
	"net/http"

	"github.com/shipote/shipote/messages"
)

// Apply sends a file to apply (or, per req, its dry run or its down) and
// returns the plan the daemon computed, carried out unless req.DryRun.
func (c *Client) Apply(ctx context.Context, req messages.ApplyRequest) (messages.ApplyResult, error) {
	var res messages.ApplyResult
	err := c.call(ctx, http.MethodPost, "/v1/apply", nil, req, &res)
	return res, err
}

// Scale gives command cmd of workspace ws exactly n instances and returns
// the plan carried out.
func (c *Client) Scale(ctx context.Context, ws, cmd string, n int) (messages.Plan, error) {
	var p messages.Plan
	w, err := seg("workspace", ws)
	if err != nil {
		return p, err
	}
	cm, err := seg("command", cmd)
	if err != nil {
		return p, err
	}
	err = c.call(ctx, http.MethodPost, "/v1/workspaces/"+w+"/commands/"+cm+"/scale", nil, messages.ScaleRequest{Instances: n}, &p)
	return p, err
}
