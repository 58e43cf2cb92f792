// This file tests package daemon: flag parsing (argv to options, or a usage
// error) and what the commands print.

package daemon

import (
	"encoding/json"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/cluster"
	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/persistence"
)

func TestNewCmdDaemon(t *testing.T) {
	defaults := Options{SampleInterval: time.Second, Grace: 5 * time.Second, LogLevel: "info", LogFormat: "auto", Limits: "auto",
		LogRetention: 24 * time.Hour, Orphans: "auto", KeepEnded: 100, KeepEndedFor: time.Hour}
	tests := []struct {
		name  string
		args  []string
		want  Options
		usage string
	}{
		{name: "defaults", want: defaults},
		{name: "every flag", args: []string{"--state", "/var/lib/s.json", "--metrics-addr", "127.0.0.1:9464",
			"--sample-interval", "250ms", "--grace", "2s", "--log-level", "debug", "--log-format", "json",
			"--limits", "rlimit", "--cgroup-parent", "shipote-test", "--log-dir", "/var/log/shipote", "--log-max-size", "1M",
			"--log-max-files", "3", "--log-retention", "1h", "--orphans", "watchdog", "--keep-ended", "5", "--keep-ended-for", "10m"},
			want: Options{StatePath: "/var/lib/s.json", MetricsAddr: "127.0.0.1:9464", SampleInterval: 250 * time.Millisecond,
				Grace: 2 * time.Second, LogLevel: "debug", LogFormat: "json", Limits: "rlimit", CgroupParent: "shipote-test",
				LogDir: "/var/log/shipote", LogMaxBytes: 1 << 20, LogMaxFiles: 3, LogRetention: time.Hour, Orphans: "watchdog",
				KeepEnded: 5, KeepEndedFor: 10 * time.Minute}},
		{name: "bad orphans", args: []string{"--orphans", "kernel"}, usage: `"kernel" is not one of auto, pid-namespace, watchdog or pdeathsig`},
		{name: "zero keep ended", args: []string{"--keep-ended", "0"}, usage: "--keep-ended must be >= 1"},
		{name: "zero keep ended for", args: []string{"--keep-ended-for", "0s"}, usage: "--keep-ended-for must be above 0"},
		{name: "bad keep ended for", args: []string{"--keep-ended-for", "soon"}, usage: "soon"},
		{name: "negative log files", args: []string{"--log-max-files", "-1"}, usage: "--log-max-files must be >= 0"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, usage: `"xml" is not one of auto, json or console`},
		{name: "bad log level", args: []string{"--log-level", "loud"}, usage: `invalid argument "loud" for "--log-level"`},
		{name: "zero sample interval", args: []string{"--sample-interval", "0s"}, usage: "--sample-interval must be above 0"},
		{name: "bad grace", args: []string{"--grace", "-1s"}, usage: "negative"},
		{name: "argument", args: []string{"now"}, usage: `unexpected argument "now"`},
		{name: "etcd", args: []string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--etcd", "http://127.0.0.1:2379,http://localhost:22379"},
			want: withCluster(defaults, ClusterOptions{Name: "c", Node: "a", Advertise: "127.0.0.1:7000", Etcd: []string{"http://127.0.0.1:2379", "http://localhost:22379"}},
				cluster.Config{Name: "c", Node: "a", Advertise: "127.0.0.1:7000", Etcd: []string{"http://127.0.0.1:2379", "http://localhost:22379"}})},
		{name: "etcd and peers", args: []string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--peers", "127.0.0.1:7002", "--etcd", "http://127.0.0.1:2379"},
			usage: "--etcd and --peers exclude each other"},
		{name: "etcd and peers without the rest", args: []string{"--peers", "127.0.0.1:7002", "--etcd", "http://127.0.0.1:2379"}, usage: "--etcd and --peers exclude each other"},
		{name: "etcd without scheme", args: []string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--etcd", "127.0.0.1:2379"},
			usage: `etcd endpoint "127.0.0.1:2379": not a URL`},
		{name: "etcd not loopback", args: []string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--etcd", "http://10.0.0.1:2379"},
			usage: "loopback"},
		{name: "etcd without the rest", args: []string{"--etcd", "http://127.0.0.1:2379"}, usage: "is required to join a cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clitest.Parse(t, NewCmdDaemon, tt.args, tt.usage)
			if got == nil {
				return
			}
			if got.Socket() != "/tmp/test.sock" {
				t.Errorf("socket %q", got.Socket())
			}
			got.IO, got.Socket = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options %+v\nwant    %+v", *got, tt.want)
			}
		})
	}
}

// withCluster returns o with the cluster flags c, which make cfg.
func withCluster(o Options, c ClusterOptions, cfg cluster.Config) Options {
	o.Cluster, o.clusterCfg = c, &cfg
	return o
}

func TestStatePath(t *testing.T) {
	t.Setenv("SHIPOTE_STATE", "")
	if got := (&Options{}).statePath(); got != persistence.DefaultPath() {
		t.Errorf("default: %q", got)
	}
	t.Setenv("SHIPOTE_STATE", "/env/state.json")
	if got := (&Options{}).statePath(); got != "/env/state.json" {
		t.Errorf("env: %q", got)
	}
	if got := (&Options{StatePath: "/flag.json"}).statePath(); got != "/flag.json" {
		t.Errorf("flag: %q", got)
	}
}

func TestLogger(t *testing.T) {
	ios, _, _, errOut := cmdutil.Test()
	log, err := newLogger(ios, "info", "auto") // not a terminal: JSON
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("hello")
	var line map[string]any
	if err := json.Unmarshal(errOut.Bytes(), &line); err != nil || line["msg"] != "hello" || line["level"] != "info" {
		t.Errorf("JSON log %q: %v", errOut.String(), err)
	}
	errOut.Reset()
	log, _ = newLogger(ios, "warn", "console")
	log.Info("hidden")
	log.Warn("careful")
	if s := errOut.String(); !strings.Contains(s, "WARN") || !strings.Contains(s, "careful") || strings.Contains(s, "hidden") {
		t.Errorf("console log %q", s)
	}
	if _, err := newLogger(ios, "loud", "json"); err == nil {
		t.Error("bad level: no error")
	}
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := notify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
	dir := t.TempDir()
	for _, name := range []string{filepath.Join(dir, "n.sock"), "@shipote-test-notify-" + strconv.FormatInt(time.Now().UnixNano(), 10)} {
		conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", name)
		if err := notify("READY=1"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != "READY=1" {
			t.Errorf("%s: read %q, %v", name, buf[:n], err)
		}
		conn.Close()
	}
	t.Setenv("NOTIFY_SOCKET", "relative")
	if err := notify("READY=1"); err == nil {
		t.Error("relative NOTIFY_SOCKET: no error")
	}
}
