// This file reads the file of `shipote up` and `shipote apply`.

package cmdutil

import (
	"fmt"
	"path/filepath"

	"github.com/shipote/shipote/internal/envfile"
	"github.com/shipote/shipote/messages"
)

// LoadUpFile reads and validates an up file, and reads the env files its
// commands name (relative to the file's directory).
func LoadUpFile(ios *IOStreams, path string) (*messages.UpFile, error) {
	data, err := ReadInput(ios, path)
	if err != nil {
		return nil, err
	}
	var uf messages.UpFile
	if err := messages.DecodeSpec(data, &uf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := uf.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := "."
	if path != "-" {
		dir = filepath.Dir(path)
	}
	if err := envfile.Expand(&uf, dir); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &uf, nil
}
