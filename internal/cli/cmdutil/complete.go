// This file owns shell completion from the daemon: workspace labels,
// command references (WS/CMD) and pipeline run IDs. Completion never
// prints an error: without a daemon it offers nothing.

package cmdutil

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completeTimeout bounds the daemon requests of one completion, so that a
// stuck daemon cannot hang the shell.
const completeTimeout = 2 * time.Second

// CompletionFunc is a cobra ValidArgsFunction.
type CompletionFunc = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective)

const noFiles = cobra.ShellCompDirectiveNoFileComp

// completeWith asks the daemon through fetch, offering nothing when it
// fails.
func completeWith(f *Factory, fetch func(ctx context.Context, c Client) []string) []string {
	c, err := f.APIClient()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	return fetch(ctx, c)
}

// workspaceLabels returns every workspace's label (its ID when it has
// none).
func workspaceLabels(ctx context.Context, c Client) []string {
	wss, err := c.Workspaces(ctx)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(wss))
	for _, w := range wss {
		if w.Spec.Label != "" {
			out = append(out, w.Spec.Label)
		} else {
			out = append(out, w.ID)
		}
	}
	return out
}

func withPrefix(items []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, s := range items {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// CompleteWorkspaces completes the first argument with workspace labels.
func CompleteWorkspaces(f *Factory) CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, noFiles
		}
		return withPrefix(completeWith(f, workspaceLabels), toComplete), noFiles
	}
}

// CompleteCommandRefs completes the first argument as WS/CMD: workspace
// labels followed by "/" until a "/" is typed, then that workspace's
// command labels. With wsAlone, a bare workspace label is offered too
// (stop WS --all, logs WS).
func CompleteCommandRefs(f *Factory, wsAlone bool) CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, noFiles
		}
		ws, _, hasSlash := strings.Cut(toComplete, "/")
		if !hasSlash {
			var out []string
			for _, l := range completeWith(f, workspaceLabels) {
				out = append(out, l+"/")
				if wsAlone {
					out = append(out, l)
				}
			}
			return withPrefix(out, toComplete), noFiles | cobra.ShellCompDirectiveNoSpace
		}
		refs := completeWith(f, func(ctx context.Context, c Client) []string {
			cmds, err := c.Commands(ctx, ws)
			if err != nil {
				return nil
			}
			seen := make(map[string]bool)
			var out []string
			for _, cm := range cmds {
				name := cm.Label
				if name == "" {
					name = cm.ID
				}
				if !seen[name] {
					seen[name] = true
					out = append(out, ws+"/"+name)
				}
			}
			return out
		})
		return withPrefix(refs, toComplete), noFiles
	}
}

// CompleteRuns completes the first argument with pipeline run IDs, each
// described by its label and workspace.
func CompleteRuns(f *Factory) CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, noFiles
		}
		runs := completeWith(f, func(ctx context.Context, c Client) []string {
			ps, err := c.Pipelines(ctx, "")
			if err != nil {
				return nil
			}
			out := make([]string, 0, len(ps))
			for _, p := range ps {
				if strings.HasPrefix(p.ID, toComplete) {
					out = append(out, cobra.CompletionWithDesc(p.ID, p.Label+" in "+p.WorkspaceLabel+" ("+string(p.State)+")"))
				}
			}
			return out
		})
		return runs, noFiles
	}
}
