// This file checks labels and names: they become parts of file and socket
// paths, so nothing may escape its directory.

package messages

import (
	"fmt"
	"regexp"
)

var labelRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidateLabel checks a workspace, command, pipeline, node or saved
// pipeline name: [A-Za-z0-9._-]{1,64}, neither "." nor "..".
func ValidateLabel(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("must not be empty")
	case len(s) > 64:
		return fmt.Errorf("%q is %d characters long; at most 64 are allowed", truncate(s, 20), len(s))
	case s == "." || s == "..":
		return fmt.Errorf("%q is not allowed", s)
	case !labelRE.MatchString(s):
		return fmt.Errorf("%q has characters outside [A-Za-z0-9._-]", s)
	}
	return nil
}

func checkLabel(field, s string) error {
	if err := ValidateLabel(s); err != nil {
		return &FieldError{Field: field, Message: err.Error()}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
