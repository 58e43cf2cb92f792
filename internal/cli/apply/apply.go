// This file owns the verbs of declarative operation against the daemon:
// apply, diff, down and scale, and the plan's printed form.

// Package apply implements `shipote apply|diff|down|scale`: an up file
// applied to the running daemon as a plan of creates, changes and removes.
package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/cli/control"
	"github.com/shipote/shipote/messages"
)

// Client is what these verbs ask of the daemon.
type Client interface {
	Apply(ctx context.Context, req messages.ApplyRequest) (messages.ApplyResult, error)
	Scale(ctx context.Context, ws, cmd string, n int) (messages.Plan, error)
}

// Options are the inputs of every verb.
type Options struct {
	IO     *cmdutil.IOStreams
	Client func() (Client, error)

	Verb    string // apply, diff, down or scale
	File    string
	Project string
	DryRun  bool
	Force   bool
	Output  string

	// scale
	Workspace string
	Command   string
	Instances int
}

func client(f *cmdutil.Factory) func() (Client, error) {
	return func() (Client, error) {
		c, err := f.APIClient()
		if err != nil {
			return nil, err
		}
		ac, ok := c.(Client)
		if !ok {
			return nil, errors.New("this daemon client cannot apply files")
		}
		return ac, nil
	}
}

func newFileCmd(f *cmdutil.Factory, runF func(*Options) error, verb string, c *cobra.Command) (*cobra.Command, *Options) {
	opts := &Options{IO: f.IO, Client: client(f), Verb: verb}
	c.Args = cmdutil.ExactArgs(0)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if opts.File == "" {
			return cmdutil.FlagErrorf("%s: -f FILE is required", cmdutil.CmdName(cmd))
		}
		if runF != nil {
			return runF(opts)
		}
		return run(cmd.Context(), opts)
	}
	fl := c.Flags()
	fl.StringVarP(&opts.File, "file", "f", "", "the up file (YAML or JSON; - reads stdin)")
	fl.StringVar(&opts.Project, "project", "", "the project the file manages (default: the file's name:, else its base name)")
	cmdutil.AddOutputFlag(c, &opts.Output)
	return c, opts
}

// NewCmdApply returns `apply`; runF replaces the run for tests.
func NewCmdApply(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, opts := newFileCmd(f, runF, "apply", &cobra.Command{
		Use:   "apply -f FILE [--dry-run] [--force]",
		Short: "Apply an up file to the daemon: create, change and remove what it manages",
		Long: `Apply an up file (the format of "shipote up", plus a top-level name:) to the
running daemon. The daemon computes a plan over what the file's project
manages and carries it out:

  + create    a workspace, command, pipeline or saved pipeline the file declares
  ~ change    a command or pipeline whose spec changed: only it is restarted;
              a saved pipeline whose spec changed: it is saved again
  -/+ replace a workspace whose spec changed: everything in it is stopped and
              started again, so it needs --force
  - remove    what the project has and the file no longer declares

The project is the file's name:, else its base name without extension
(--project overrides). Workspaces and saved pipelines are recorded with their
project; a label or name held by another project, or made by hand, is an
error. Applying the same file twice changes nothing and restarts nothing.

An apply is all or nothing: every change is made durable in the state file
with one write before anything is stopped or started, and if that write
fails nothing of the plan is in effect (the error says why).

env_file entries are read here, relative to the file's directory.`,
		Example: `  shipote apply -f examples/stack/stack.yaml
  shipote apply -f stack.yaml --dry-run
  shipote apply -f stack.yaml --force`,
	})
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "allow a plan that replaces a workspace")
	return cmd
}

// NewCmdDiff returns `diff`; runF replaces the run for tests.
func NewCmdDiff(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, _ := newFileCmd(f, runF, "diff", &cobra.Command{
		Use:   "diff -f FILE",
		Short: "Print what apply -f FILE would do, changing nothing",
		Long: `Print the plan "shipote apply -f FILE" would carry out: + create, ~ change
with the fields that differ, -/+ replace, - remove; then a summary line.
Nothing changes. It exits 0 whether or not there are differences.`,
		Example: `  shipote diff -f examples/stack/stack.yaml`,
	})
	return cmd
}

// NewCmdDown returns `down`; runF replaces the run for tests.
func NewCmdDown(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, opts := newFileCmd(f, runF, "down", &cobra.Command{
		Use:   "down -f FILE",
		Short: "Remove every workspace and saved pipeline of the file's project",
		Long: `Remove every workspace and saved pipeline the file's project manages (the
processes get SIGTERM, the grace period, SIGKILL). What belongs to other
projects, or was made by hand, is left alone even when the file names it.`,
		Example: `  shipote down -f examples/stack/stack.yaml`,
	})
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	return cmd
}

// NewCmdScale returns `scale`; runF replaces the run for tests.
func NewCmdScale(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: client(f), Verb: "scale"}
	cmd := &cobra.Command{
		Use:   "scale WS/CMD N",
		Short: "Run N instances of a command (labelled CMD-0 … CMD-<N-1>)",
		Long: `Give command CMD of workspace WS exactly N instances, labelled CMD-0 …
CMD-<N-1>, each with the spec of the newest command of that group (CMD itself
or one of its instances). Missing instances are started, extra ones stopped
and forgotten; N = 0 removes them all. An applied file sets the count again
on its next apply.`,
		Example: `  shipote scale shop/worker 4`,
		Args:    cmdutil.ExactArgs(2, "WS/CMD", "N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, err := control.ParseRef(cmd, args[0])
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 || n > messages.MaxInstances {
				return cmdutil.FlagErrorf("%s: N %q is not a number from 0 to %d", cmdutil.CmdName(cmd), args[1], messages.MaxInstances)
			}
			opts.Workspace, opts.Command, opts.Instances = ws, c, n
			if runF != nil {
				return runF(opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

// Project returns the project a file manages: override, else the file's
// name:, else its base name without extension.
func Project(override string, f *messages.UpFile, path string) (string, error) {
	p := override
	if p == "" {
		p = f.Name
	}
	if p == "" {
		if path == "-" {
			return "", errors.New("a file read from stdin needs a name: or --project")
		}
		base := filepath.Base(path)
		p = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if err := messages.ValidateLabel(p); err != nil {
		return "", fmt.Errorf("project name %w; set name: in the file or --project", err)
	}
	return p, nil
}

func run(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	if o.Verb == "scale" {
		p, err := c.Scale(ctx, o.Workspace, o.Command, o.Instances)
		if err != nil {
			return fmt.Errorf("scale %s/%s: %w", o.Workspace, o.Command, err)
		}
		if o.Output == "json" {
			return cmdutil.WriteJSON(o.IO.Out, p)
		}
		Print(o.IO.Out, p)
		return nil
	}
	f, err := cmdutil.LoadUpFile(o.IO, o.File)
	if err != nil {
		return err
	}
	project, err := Project(o.Project, f, o.File)
	if err != nil {
		return fmt.Errorf("%s: %w", o.File, err)
	}
	req := messages.ApplyRequest{Project: project, File: *f, DryRun: o.DryRun || o.Verb == "diff", Force: o.Force, Down: o.Verb == "down"}
	if req.Down {
		req.File = messages.UpFile{Name: f.Name}
	}
	res, err := c.Apply(ctx, req)
	if err != nil {
		if o.Verb == "apply" && !req.DryRun && !o.Force && errors.Is(err, messages.ErrConflict) {
			// Show what the refused plan would have done (a replace).
			req.DryRun = true
			if dry, derr := c.Apply(ctx, req); derr == nil {
				Print(o.IO.ErrOut, dry.Plan)
			}
		}
		return fmt.Errorf("%s -f %s: %w", o.Verb, o.File, err)
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, res)
	}
	Print(o.IO.Out, res.Plan)
	if res.Applied && !res.Plan.Empty() {
		fmt.Fprintf(o.IO.ErrOut, "applied (project %s)\n", res.Plan.Project)
	}
	return nil
}

var marks = map[messages.PlanAction]string{
	messages.PlanCreate:  "+",
	messages.PlanChange:  "~",
	messages.PlanReplace: "-/+",
	messages.PlanRemove:  "-",
}

// Print writes a plan, one line per entry, then a summary line.
func Print(w io.Writer, p messages.Plan) {
	if p.Empty() {
		fmt.Fprintln(w, "No changes.")
		return
	}
	for _, e := range p.Entries {
		name := e.Workspace
		switch {
		case e.Kind == messages.PlanSaved:
			name = e.Name // global, in no workspace
		case e.Name != "":
			name += "/" + e.Name
		}
		line := fmt.Sprintf("%s %s %s %s", marks[e.Action], e.Action, e.Kind, name)
		if len(e.Fields) > 0 {
			line += ": " + strings.Join(e.Fields, ", ")
		}
		if e.Action == messages.PlanReplace {
			line += " (needs --force)"
		}
		fmt.Fprintln(w, line)
	}
	n := p.Counts()
	fmt.Fprintf(w, "Plan: %d to create, %d to change, %d to replace, %d to remove.\n",
		n[messages.PlanCreate], n[messages.PlanChange], n[messages.PlanReplace], n[messages.PlanRemove])
}
