package daemon

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestGuardPlan(t *testing.T) {
	noPidns := errors.New("no CAP_SYS_ADMIN (not root)")
	noUserns := errors.New("user namespaces are off")
	tests := []struct {
		want             string
		pidns, userns    error
		modes            []string
		engine, errMatch string
	}{
		{want: "auto", modes: nil, engine: "auto"},
		{want: "", modes: nil, engine: "auto"},
		{want: "auto", pidns: noPidns, modes: []string{guardUserNS, guardWatchdog}},
		{want: "auto", pidns: noPidns, userns: noUserns, modes: []string{guardWatchdog}},
		{want: "pid-namespace", modes: nil, engine: "pid-namespace"},
		{want: "pid-namespace", pidns: noPidns, modes: []string{guardUserNS}},
		{want: "pid-namespace", pidns: noPidns, userns: noUserns, errMatch: "user namespaces are off"},
		{want: "watchdog", modes: []string{guardWatchdog}},
		{want: "watchdog", pidns: noPidns, userns: noUserns, modes: []string{guardWatchdog}},
		{want: "pdeathsig", pidns: noPidns, engine: "pdeathsig"},
		{want: "kernel", errMatch: `--orphans "kernel": want one of auto, pid-namespace, watchdog, pdeathsig`},
	}
	for _, tt := range tests {
		modes, engine, err := guardPlan(tt.want, tt.pidns, tt.userns)
		if tt.errMatch != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errMatch) {
				t.Errorf("guardPlan(%q, %v, %v) error = %v, want one with %q", tt.want, tt.pidns, tt.userns, err, tt.errMatch)
			}
			continue
		}
		if err != nil || !slices.Equal(modes, tt.modes) || engine != tt.engine {
			t.Errorf("guardPlan(%q, %v, %v) = %v, %q, %v; want %v, %q", tt.want, tt.pidns, tt.userns, modes, engine, err, tt.modes, tt.engine)
		}
	}
}

func TestTakeGuardEnv(t *testing.T) {
	for _, tt := range []struct {
		val     string
		want    *guarded
		wantErr bool
	}{
		{val: "userns:1234", want: &guarded{mode: guardUserNS, pid: 1234}},
		{val: "watchdog:99", want: &guarded{mode: guardWatchdog, pid: 99}},
		{val: "watchdog:1", wantErr: true},
		{val: "watchdog:", wantErr: true},
		{val: "root:12", wantErr: true},
		{val: "", wantErr: true},
		{val: "userns:12x", wantErr: true},
	} {
		t.Setenv(guardEnv, tt.val)
		g, err := takeGuardEnv()
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), guardEnv) {
				t.Errorf("%q: error = %v, want one naming %s", tt.val, err, guardEnv)
			}
			continue
		}
		if err != nil || *g != *tt.want {
			t.Errorf("%q: got %+v, %v; want %+v", tt.val, g, err, tt.want)
		}
	}
	t.Setenv(guardEnv, "watchdog:42")
	if _, err := takeGuardEnv(); err != nil {
		t.Fatal(err)
	}
	if _, ok := lookupEnv(guardEnv); ok {
		t.Errorf("%s is still set: the daemon's commands would inherit it", guardEnv)
	}
}

func lookupEnv(k string) (string, bool) { return os.LookupEnv(k) }
