// This file tests `shipote service`: the unit written, the systemctl
// commands run (a fake systemctl records its argv), what is printed, and
// the reverse by uninstall.

package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
)

// fakeSystemctl writes a systemctl that appends its argv to a log, and
// fails when its first word is in failOn.
func fakeSystemctl(t *testing.T, failOn string) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	path, log = filepath.Join(dir, "systemctl"), filepath.Join(dir, "argv.log")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\n"
	if failOn != "" {
		script += "case \"$*\" in *" + failOn + "*) echo 'Failed to " + failOn + ": boom' >&2; exit 1;; esac\n"
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

func TestInstallUninstall(t *testing.T) {
	tests := []struct {
		name               string
		args               []string
		unit               string
		installed, removed []string
		wantInUnit         []string
		hint               string
	}{
		{"system", nil, "etc/systemd/system/shipote.service",
			[]string{"daemon-reload", "enable --now shipote.service"},
			[]string{"disable --now shipote.service", "daemon-reload"},
			[]string{"Type=notify", "ExecStart=/opt/bin/shipote daemon --log-format json --socket /run/shipote/shipote.sock --state /var/lib/shipote/state.json --grace 7s",
				"WantedBy=multi-user.target", "TimeoutStopSec=47", "RuntimeDirectory=shipote", "StateDirectory=shipote"},
			"clients reach it with: shipote --socket /run/shipote/shipote.sock ... (or SHIPOTE_SOCKET=/run/shipote/shipote.sock)\n"},
		{"user without start", []string{"--user", "--no-start"}, "home/ann/.config/systemd/user/shipote.service",
			[]string{"--user daemon-reload", "--user enable shipote.service"},
			[]string{"--user disable shipote.service", "--user daemon-reload"},
			[]string{"Type=notify", "WantedBy=default.target", "ExecStart=/opt/bin/shipote daemon --log-format json --grace 7s"},
			""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			systemctl, log := fakeSystemctl(t, "")
			f, out, _ := clitest.Factory(nil, time.Now())
			t.Setenv("HOME", "/home/ann")
			args := append([]string{"install", "--root", root, "--systemctl", systemctl, "--exec", "/opt/bin/shipote",
				"--grace", "7s"}, tt.args...)
			if err := clitest.Run(NewCmdService(f, nil), args...); err != nil {
				t.Fatal(err)
			}
			unitPath := filepath.Join(root, tt.unit)
			b, err := os.ReadFile(unitPath)
			if err != nil {
				t.Fatalf("no unit written: %v", err)
			}
			for _, want := range tt.wantInUnit {
				if !strings.Contains(string(b), want+"\n") {
					t.Errorf("unit lacks %q:\n%s", want, b)
				}
			}
			var wantCalls []string
			wantOut := "wrote " + unitPath + "\n"
			for _, c := range tt.installed {
				wantCalls = append(wantCalls, c)
				wantOut += "ran: " + systemctl + " " + c + "\n"
			}
			wantOut += tt.hint
			if got := calls(t, log); !equal(got, wantCalls) {
				t.Errorf("systemctl calls %q, want %q", got, wantCalls)
			}
			if out.String() != wantOut {
				t.Errorf("printed\n%s\nwant\n%s", out.String(), wantOut)
			}
			// uninstall reverses it.
			out.Reset()
			uargs := []string{"uninstall", "--root", root, "--systemctl", systemctl}
			for _, a := range tt.args {
				if a == "--no-start" {
					a = "--no-stop"
				}
				uargs = append(uargs, a)
			}
			if err := clitest.Run(NewCmdService(f, nil), uargs...); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(unitPath); !os.IsNotExist(err) {
				t.Errorf("unit still there: %v", err)
			}
			if got := calls(t, log)[len(tt.installed):]; !equal(got, tt.removed) {
				t.Errorf("uninstall ran %q, want %q", got, tt.removed)
			}
			if !strings.Contains(out.String(), "removed "+unitPath+"\n") {
				t.Errorf("uninstall printed %q", out.String())
			}
			// A second uninstall says there is nothing to remove.
			err = clitest.Run(NewCmdService(f, nil), uargs...)
			if err == nil || !strings.Contains(err.Error(), "is not installed") {
				t.Errorf("second uninstall: %v", err)
			}
		})
	}
}

func TestInstallDryRunChangesNothing(t *testing.T) {
	root := t.TempDir()
	systemctl, log := fakeSystemctl(t, "")
	f, out, _ := clitest.Factory(nil, time.Now())
	if err := clitest.Run(NewCmdService(f, nil), "install", "--dry-run", "--root", root, "--systemctl", systemctl, "--exec", "/usr/bin/shipote"); err != nil {
		t.Fatal(err)
	}
	if c := calls(t, log); c != nil {
		t.Errorf("a dry run ran %q", c)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("a dry run wrote %v", ents)
	}
	for _, want := range []string{"would write " + filepath.Join(root, "etc/systemd/system/shipote.service"), "Type=notify",
		"would run: " + systemctl + " daemon-reload", "would run: " + systemctl + " enable --now shipote.service"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestInstallErrors(t *testing.T) {
	systemctl, _ := fakeSystemctl(t, "enable")
	tests := []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"systemctl fails", []string{"--systemctl", systemctl}, "enable --now shipote.service: exit status 1: Failed to enable: boom", false},
		{"no such systemctl", []string{"--systemctl", "/nonexistent/systemctl"}, "/nonexistent/systemctl daemon-reload", false},
		{"relative exec", []string{"--systemctl", systemctl, "--exec", "bin/shipote"}, `--exec "bin/shipote" is not an absolute path`, false},
		{"bad grace", []string{"--grace", "0s"}, "--grace must be above 0", true},
		{"argument", []string{"now"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := clitest.Factory(nil, time.Now())
			args := append([]string{"install", "--root", t.TempDir()}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--exec") {
				args = append(args, "--exec", "/usr/bin/shipote")
			}
			err := clitest.Run(NewCmdService(f, nil), args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || clitest.IsUsage(err) != tt.usage {
				t.Errorf("error %v (usage %v), want %q (usage %v)", err, clitest.IsUsage(err), tt.want, tt.usage)
			}
		})
	}
	f, _, _ := clitest.Factory(nil, time.Now())
	t.Setenv("HOME", "")
	err := clitest.Run(NewCmdService(f, nil), "install", "--user", "--root", t.TempDir(), "--systemctl", systemctl)
	if err == nil || !strings.Contains(err.Error(), "$HOME") {
		t.Errorf("--user without HOME: %v", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/shipote": "/usr/bin/shipote",
		"/opt/my dir/s":    `"/opt/my dir/s"`,
		"/a/$HOME%i":       `"/a/$$HOME%%i"`,
		`/a/"q"`:           `"/a/\"q\""`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
