// This file owns `shipote ws create`: a workspace spec from flags and/or a
// file, sent to the daemon; the new ID is printed alone.

package ws

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// CreateOptions are the inputs of `ws create`.
type CreateOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)

	// File is the -f spec file ("-" = stdin); "" = none.
	File string
	// Node is the cluster member to create it on (--node); "" = where
	// the daemon places it.
	Node string
	// Flags holds the flag values; Changed names the flags that were
	// given, which override the file's fields.
	Flags   CreateFlags
	Changed map[string]bool
}

// CreateFlags are the spec fields settable by flag.
type CreateFlags struct {
	Label        string
	Mem          int64
	CPU          float64
	Pids         int64
	Nofile       int64
	TTL          time.Duration
	OnExit       string
	QuotaEnforce string
	AllowExec    []string
	Workdir      string
	Env          []string
	FlowDirs     []string
	UID, GID     int64
}

// specFlags are the flags that map to a spec field.
var specFlags = []string{"label", "mem", "cpu", "pids", "nofile", "ttl", "on-exit", "quota-enforce",
	"allow-exec", "workdir", "env", "flow-dir", "uid", "gid"}

// NewCmdCreate returns `ws create`; runF replaces the run for tests.
func NewCmdCreate(f *cmdutil.Factory, runF func(*CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IO, Client: f.APIClient}
	fl := &opts.Flags
	cmd := &cobra.Command{
		Use:   "create --label L [flags] | -f workspace.yaml",
		Short: "Create a workspace and print its ID",
		Example: `  shipote ws create --label build --mem 512M --cpu 1.5 --pids 64 --ttl 10m
  shipote ws create -f workspace.yaml --ttl 1h   # flags override the file`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Changed = make(map[string]bool)
			for _, name := range specFlags {
				if cmd.Flags().Changed(name) {
					opts.Changed[name] = true
				}
			}
			if opts.File == "" && !opts.Changed["label"] {
				return cmdutil.FlagErrorf("required flag --label not set (or give a spec with -f)")
			}
			if runF != nil {
				return runF(opts)
			}
			return createRun(cmd, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.File, "file", "f", "", "workspace spec file, JSON or YAML (- = stdin)")
	flags.StringVar(&opts.Node, "node", "", "cluster member to create it on (default: the member with the most memory headroom)")
	flags.StringVar(&fl.Label, "label", "", "workspace label, [A-Za-z0-9._-]{1,64}, unique")
	flags.Var(cmdutil.SizeValue{P: &fl.Mem}, "mem", "memory limit (512M, 2G; 0 = unlimited)")
	flags.Var(cmdutil.FloatValue{P: &fl.CPU}, "cpu", "CPU limit in cores (1.5; 0 = unlimited)")
	flags.Var(cmdutil.CountValue{P: &fl.Pids}, "pids", "maximum number of processes (0 = unlimited)")
	flags.Var(cmdutil.CountValue{P: &fl.Nofile}, "nofile", "maximum open files per process (0 = unlimited)")
	flags.Var(cmdutil.DurationValue{P: &fl.TTL}, "ttl", "time to live from creation (10m; 0 = none)")
	cmdutil.EnumVarP(cmd, &fl.OnExit, "on-exit", "", "", []string{"keep", "reap"},
		"when every command has ended: keep or reap (default keep)")
	cmdutil.EnumVarP(cmd, &fl.QuotaEnforce, "quota-enforce", "", "", []string{"off", "warn", "kill"},
		"over a sampled limit: off, warn or kill (default warn)")
	flags.StringArrayVar(&fl.AllowExec, "allow-exec", nil, "allowed executable, or directory ending in / (repeatable; none = anything)")
	flags.StringVar(&fl.Workdir, "workdir", "", "working directory of every command")
	flags.Var(cmdutil.EnvValue{P: &fl.Env}, "env", "environment variable K=V of every command (repeatable)")
	flags.StringArrayVar(&fl.FlowDirs, "flow-dir", nil, "directory for tap sockets (repeatable)")
	flags.Var(cmdutil.CountValue{P: &fl.UID}, "uid", "run commands as this uid (daemon as root only)")
	flags.Var(cmdutil.CountValue{P: &fl.GID}, "gid", "run commands as this gid (daemon as root only)")
	return cmd
}

// Spec builds the workspace spec: the file's (if any), with every given
// flag overriding its field.
func (o *CreateOptions) Spec() (messages.WorkspaceSpec, error) {
	var spec messages.WorkspaceSpec
	if o.File != "" {
		data, err := cmdutil.ReadInput(o.IO, o.File)
		if err != nil {
			return spec, err
		}
		if err := messages.DecodeSpec(data, &spec); err != nil {
			return spec, fmt.Errorf("%s: %w", o.File, err)
		}
	}
	fl, c := o.Flags, o.Changed
	if c["label"] {
		spec.Label = fl.Label
	}
	if c["mem"] {
		spec.Soma.MemoryMaxBytes = fl.Mem
	}
	if c["cpu"] {
		spec.Soma.CPUMax = fl.CPU
	}
	if c["pids"] {
		spec.Soma.PidsMax = fl.Pids
	}
	if c["nofile"] {
		spec.Soma.NofileMax = fl.Nofile
	}
	if c["ttl"] {
		spec.TTLMs = fl.TTL.Milliseconds()
		if fl.TTL > 0 && spec.TTLMs == 0 {
			spec.TTLMs = 1
		}
	}
	if c["on-exit"] {
		spec.OnExit = messages.ExitPolicy(fl.OnExit)
	}
	if c["quota-enforce"] {
		spec.QuotaEnforce = messages.QuotaEnforce(fl.QuotaEnforce)
	}
	if c["allow-exec"] {
		spec.Permissions.AllowExec = fl.AllowExec
	}
	if c["workdir"] {
		spec.Permissions.Workdir = fl.Workdir
	}
	if c["env"] {
		if spec.Permissions.Env == nil {
			spec.Permissions.Env = make(map[string]string)
		}
		for k, v := range cmdutil.EnvMap(fl.Env) {
			spec.Permissions.Env[k] = v
		}
	}
	if c["flow-dir"] {
		spec.FlowDirs = fl.FlowDirs
	}
	if c["uid"] {
		uid := fl.UID
		spec.Permissions.UID = &uid
	}
	if c["gid"] {
		gid := fl.GID
		spec.Permissions.GID = &gid
	}
	return spec, nil
}

func createRun(cmd *cobra.Command, o *CreateOptions) error {
	spec, err := o.Spec()
	if err != nil {
		return err
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	info, err := c.CreateWorkspaceOn(cmd.Context(), spec, o.Node)
	if err != nil {
		return fmt.Errorf("create workspace: %w", err)
	}
	fmt.Fprintln(o.IO.Out, info.ID)
	return nil
}
