// This file tests reading dotenv files and folding them into envp: errors
// name the file and the line.

package envfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shipote/shipote/messages"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		want       string // substring after the path
	}{
		{"bad name", "A=1\n# note\nB-C=2\n", ":3: unexpected character \"-\" in variable name"},
		{"bad name first line", "a b c\n", ":1: unexpected character"},
		{"unterminated", "A=1\nB=\"open\nC=2\n", ":2: unterminated quoted value"},
		{"crlf", "A=1\r\nB=2\r\n?X=1\r\n", ":3: unexpected character \"?\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, dir, strings.ReplaceAll(tt.name, " ", "_")+".env", tt.body)
			_, err := Read(p)
			if err == nil {
				t.Fatalf("Read(%q) = nil error", tt.body)
			}
			if !errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), p+tt.want) {
				t.Fatalf("Read() error = %q, want prefix %q", err, p+tt.want)
			}
		})
	}
	if _, err := Read(filepath.Join(dir, "missing.env")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.env") {
		t.Fatalf("missing file: error = %v", err)
	}
}

func TestReadValues(t *testing.T) {
	p := write(t, t.TempDir(), "a.env", "# comment\nexport A=1\nB=\"two words\"\nC='x#y' # note\nMULTI=\"l1\nl2\"\n")
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "x#y", "MULTI": "l1\nl2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Read() = %v, want %v", got, want)
	}
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "base.env", "A=base\nB=base\nC=base\nHOME_DIR=/x\n")
	abs := write(t, dir, "over.env", "B=over\n")
	u := messages.UpFile{Workspaces: []messages.UpWorkspace{{
		WorkspaceSpec: messages.WorkspaceSpec{Label: "w", Permissions: messages.Permissions{Env: map[string]string{"HOME_DIR": "/ws"}}},
		Commands: []messages.CommandRef{
			{Label: "c", EnvFile: []string{"base.env", abs}, Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true", Envp: []string{"C=envp"}}}},
			{Label: "plain", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true"}}},
		},
	}}}
	if err := Expand(&u, dir); err != nil {
		t.Fatal(err)
	}
	c := u.Workspaces[0].Commands[0]
	want := []string{"A=base", "B=over", "C=envp"}
	if !reflect.DeepEqual(c.Payload.Native.Envp, want) || c.EnvFile != nil {
		t.Fatalf("after Expand: envp %q env_file %q, want %q and none", c.Payload.Native.Envp, c.EnvFile, want)
	}
	if u.Workspaces[0].Commands[1].Payload.Native.Envp != nil {
		t.Fatalf("a command without env_file changed: %q", u.Workspaces[0].Commands[1].Payload.Native.Envp)
	}

	write(t, dir, "bad.env", "OK=1\n\nNOT OK\n")
	u.Workspaces[0].Commands[1].EnvFile = []string{"bad.env"}
	err := Expand(&u, dir)
	wantErr := "workspaces[0].commands[1].env_file[0]: " + filepath.Join(dir, "bad.env") + ":3: "
	if err == nil || !strings.HasPrefix(err.Error(), wantErr) {
		t.Fatalf("Expand with a bad file: %v, want prefix %q", err, wantErr)
	}
}
