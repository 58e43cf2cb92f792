// This file owns `shipote tap`: a live copy of a pipeline node's output,
// streamed to stdout until the run ends or Ctrl-C.

// Package tap implements `shipote tap`.
package tap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/messages"

	"github.com/shipote/shipote/internal/cli/cmdutil"
)

// Options are the inputs of `tap`.
type Options struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Run    string
	Node   string // "" = the first producer
}

// NewCmdTap returns `tap`; runF replaces the run for tests.
func NewCmdTap(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "tap RUN [--node N]",
		Short: "Stream a pipeline node's output to stdout",
		Long: `Stream a live copy of a pipeline node's output, from now on, to stdout until
the run ends or Ctrl-C. A tap never slows the pipeline: when stdout is too
slow, bytes are lost (and counted in "pipe show").`,
		Args: cmdutil.ExactArgs(1, "RUN"),

		ValidArgsFunction: cmdutil.CompleteRuns(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Run = args[0]
			if runF != nil {
				return runF(opts)
			}
			return tapRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Node, "node", "", "node to tap (default: the first producer)")
	return cmd
}

func tapRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	rc, err := open(ctx, c, o)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("tap: %w", err)
	}
	// Closing the stream when ctx ends unblocks the copy.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	defer rc.Close()
	_, err = io.Copy(o.IO.Out, rc)
	if ctx.Err() != nil {
		return nil // Ctrl-C
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("tap: %w", err)
	}
	return nil
}

// startWait bounds how long tap waits for a run that is still starting.
const startWait = 10 * time.Second

// open opens the tap. A run that is starting or waiting to restart has no
// live splitter yet (a conflict): open waits for it, up to startWait.
func open(ctx context.Context, c cmdutil.Client, o *Options) (io.ReadCloser, error) {
	deadline := time.Now().Add(startWait)
	for {
		rc, err := c.Tap(ctx, o.Run, o.Node)
		if err == nil || !errors.Is(err, messages.ErrConflict) || time.Now().After(deadline) {
			return rc, err
		}
		p, perr := c.Pipeline(ctx, o.Run)
		if perr != nil || p.State.Ended() {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
