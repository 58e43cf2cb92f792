// This file joins the daemon to a cluster (--cluster): the flags, the
// config the engine joins with (see server.Membership).

package daemon

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/cluster"
	"github.com/shipote/shipote/internal/cli/cmdutil"
)

// ClusterOptions are the daemon's cluster flags.
type ClusterOptions struct {
	Name      string   // --cluster
	Node      string   // --node
	Advertise string   // --advertise
	Peers     []string // --peers
	Etcd      []string // --etcd
	TokenFile string   // --cluster-token-file
	TLSCert   string   // --tls-cert
	TLSKey    string   // --tls-key
	TLSCA     string   // --tls-ca
}

func addClusterFlags(cmd *cobra.Command, o *ClusterOptions) {
	flags := cmd.Flags()
	flags.StringVar(&o.Name, "cluster", "", "join the cluster of this name (with --node and --advertise)")
	flags.StringVar(&o.Node, "node", "", "this member's name in the cluster, unique there")
	flags.StringVar(&o.Advertise, "advertise", "", "HOST:PORT where the other members reach this one (PORT+1 carries the membership heartbeat, except with --etcd); loopback only without --tls-*")
	flags.StringSliceVar(&o.Peers, "peers", nil, "the other members' --advertise addresses, comma-separated (membership by heartbeats: protoactor's automanaged provider)")
	flags.StringSliceVar(&o.Etcd, "etcd", nil, "etcd client endpoints, comma-separated (http://HOST:PORT,...): membership by etcd leases (protoactor's etcd provider) instead of --peers; loopback only without --tls-*")
	flags.StringVar(&o.TokenFile, "cluster-token-file", "", "file holding a secret every member must present; a peer without it is refused")
	flags.StringVar(&o.TLSCert, "tls-cert", "", "this member's certificate (PEM), for mutual TLS between members")
	flags.StringVar(&o.TLSKey, "tls-key", "", "the key of --tls-cert (PEM)")
	flags.StringVar(&o.TLSCA, "tls-ca", "", "the CA that signed every member's certificate (PEM); a peer it did not sign is refused")
}

// config checks the flags and returns the member's config; ok is false
// when no cluster flag was given.
func (o *ClusterOptions) config() (cfg cluster.Config, ok bool, err error) {
	if o.Name == "" && o.Node == "" && o.Advertise == "" && len(o.Peers) == 0 && len(o.Etcd) == 0 && o.TokenFile == "" &&
		o.TLSCert == "" && o.TLSKey == "" && o.TLSCA == "" {
		return cfg, false, nil
	}
	if !cluster.Linked {
		return cfg, false, cmdutil.FlagErrorf("%v: the cluster flags (--cluster, --node, --advertise, --peers, --etcd, --cluster-token-file, --tls-*) cannot be used", cluster.ErrNotLinked)
	}
	if len(o.Peers) > 0 && len(o.Etcd) > 0 {
		return cfg, false, cmdutil.FlagErrorf("--etcd and --peers exclude each other: membership comes from etcd or from the peers' heartbeats")
	}
	for flag, v := range map[string]string{"--cluster": o.Name, "--node": o.Node, "--advertise": o.Advertise} {
		if v == "" {
			return cfg, false, cmdutil.FlagErrorf("%s is required to join a cluster (--cluster NAME --node NODE --advertise HOST:PORT)", flag)
		}
	}
	cfg = cluster.Config{Name: o.Name, Node: o.Node, Advertise: o.Advertise, Peers: o.Peers, Etcd: o.Etcd,
		TLSCert: o.TLSCert, TLSKey: o.TLSKey, TLSCA: o.TLSCA}
	if o.TokenFile != "" {
		data, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return cfg, false, cmdutil.FlagErrorf("--cluster-token-file: %v", err)
		}
		cfg.Token = strings.TrimSpace(string(data))
		if cfg.Token == "" {
			return cfg, false, cmdutil.FlagErrorf("--cluster-token-file %s is empty", o.TokenFile)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, false, cmdutil.FlagErrorf("%v", err)
	}
	return cfg, true, nil
}
