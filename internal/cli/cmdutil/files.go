// This file owns reading spec files given on the command line.

package cmdutil

import (
	"fmt"
	"io"
	"os"
)

// ReadInput reads the file at path, "-" meaning stdin.
func ReadInput(s *IOStreams, path string) ([]byte, error) {
	if path == "-" {
		data, err := io.ReadAll(s.In)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return data, nil
	}
	return os.ReadFile(path)
}
