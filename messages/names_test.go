// This file tests label validation and FieldError paths.

package messages

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateLabel(t *testing.T) {
	tests := []struct {
		name  string
		label string
		want  string // substring of the error; "" = valid
	}{
		{"simple", "build", ""},
		{"one char", "a", ""},
		{"all classes", "A-z_0.9", ""},
		{"leading dot", ".hidden", ""},
		{"leading dash", "-x", ""},
		{"three dots", "...", ""},
		{"double dot inside", "a..b", ""},
		{"64 chars", strings.Repeat("a", 64), ""},
		{"empty", "", "must not be empty"},
		{"65 chars", strings.Repeat("a", 65), "65 characters long; at most 64"},
		{"1000 chars", strings.Repeat("b", 1000), "1000 characters long"},
		{"dot", ".", `"." is not allowed`},
		{"dotdot", "..", `".." is not allowed`},
		{"slash", "a/b", `"a/b" has characters outside [A-Za-z0-9._-]`},
		{"leading slash", "/etc", "characters outside"},
		{"traversal", "../x", "characters outside"},
		{"space", "a b", `"a b" has characters outside`},
		{"tab", "a\tb", "characters outside"},
		{"newline", "a\n", "characters outside"},
		{"nul", "a\x00b", "characters outside"},
		{"unicode", "héllo", "characters outside"},
		{"emoji", "🚀", "characters outside"},
		{"colon", "a:b", "characters outside"},
		{"star", "a*", "characters outside"},
		{"backslash", `a\b`, "characters outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateLabel(tt.label)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateLabel(%q) = %v, want nil", tt.label, err)
				}
				return
			}
			wantErrContains(t, err, tt.want)
		})
	}
}

func TestValidateLabelLongMessageIsTruncated(t *testing.T) {
	err := ValidateLabel(strings.Repeat("x", 500))
	wantErrContains(t, err, "500 characters long", "...")
	if len(err.Error()) > 120 {
		t.Errorf("message is %d bytes long; the label should be truncated: %q", len(err.Error()), err)
	}
}

func TestFieldError(t *testing.T) {
	fe := &FieldError{Field: "soma.pids_max", Message: "must be >= 0"}
	if got, want := fe.Error(), "soma.pids_max: must be >= 0"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&FieldError{Message: "bare"}).Error(); got != "bare" {
		t.Errorf("Error() without a field = %q, want %q", got, "bare")
	}
	if !errors.Is(fe, ErrInvalid) {
		t.Error("FieldError does not wrap ErrInvalid")
	}
}

func TestWithPrefix(t *testing.T) {
	plain := errors.New("plain")
	tests := []struct {
		name   string
		prefix string
		err    error
		want   string // full error text; "" = nil
	}{
		{"nil", "workspaces[0]", nil, ""},
		{"dotted", "workspaces[0]", &FieldError{Field: "label", Message: "m"}, "workspaces[0].label: m"},
		{"index", "workspaces[0].commands", &FieldError{Field: "[2].label", Message: "m"}, "workspaces[0].commands[2].label: m"},
		{"empty field", "workspaces[3]", &FieldError{Message: "m"}, "workspaces[3]: m"},
		{"empty prefix", "", &FieldError{Field: "label", Message: "m"}, "label: m"},
		{"nested twice", "a", WithPrefix("b[1]", &FieldError{Field: "c", Message: "m"}), "a.b[1].c: m"},
		{"not a FieldError", "workspaces[0]", plain, "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WithPrefix(tt.prefix, tt.err)
			if tt.want == "" {
				if got != nil {
					t.Fatalf("got %v, want nil", got)
				}
				return
			}
			if got == nil || got.Error() != tt.want {
				t.Fatalf("got %v, want %q", got, tt.want)
			}
		})
	}
	if got := WithPrefix("x", plain); got != plain {
		t.Errorf("a non-FieldError was not returned unchanged: %v", got)
	}
	if got := WithPrefix("x", &FieldError{Field: "f", Message: "m"}); !errors.Is(got, ErrInvalid) {
		t.Errorf("prefixed error %v does not wrap ErrInvalid", got)
	}
}
