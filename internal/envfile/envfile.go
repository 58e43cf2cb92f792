// This file reads dotenv files (through github.com/joho/godotenv) and folds
// the env_file lists of a loaded file into each command's envp.

// Package envfile reads the env_file entries of commands: dotenv files whose
// variables a command gets beneath its own envp and its workspace's env.
package envfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/joho/godotenv"

	"github.com/shipote/shipote/messages"
)

// ErrSyntax is wrapped by the error of a file that is not valid dotenv.
var ErrSyntax = errors.New("envfile: bad dotenv syntax")

// Read reads the dotenv file at path. A syntax error names the file and
// the line ("app.env:3: unexpected character ...").
func Read(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	vars, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		line, msg := locate(data, err.Error())
		return nil, fmt.Errorf("%s:%d: %s: %w", path, line, msg, ErrSyntax)
	}
	for k, v := range vars {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%s: variable %q: name or value not allowed in an environment: %w", path, k, ErrSyntax)
		}
	}
	return vars, nil
}

// locate finds the line godotenv's error points at, from the text it
// quotes, and returns it with the message shortened to its first clause.
func locate(data []byte, msg string) (int, string) {
	src := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	lineAt := func(off int) int { return bytes.Count(src[:off], []byte("\n")) + 1 }
	const near = " near "
	if i := strings.Index(msg, near); i >= 0 {
		// "unexpected character ... near <rest of the file, quoted>"
		head := msg[:i]
		var rest string
		if _, err := fmt.Sscanf(msg[i+len(near):], "%q", &rest); err == nil && len(rest) <= len(src) &&
			bytes.HasSuffix(src, []byte(rest)) {
			return lineAt(len(src) - len(rest)), head
		}
		return 1, head
	}
	const unterminated = "unterminated quoted value "
	if v, ok := strings.CutPrefix(msg, unterminated); ok {
		// The value runs to the end of the file: the last place its first
		// line appears is where it opens.
		if off := bytes.LastIndex(src, []byte(v)); off >= 0 && v != "" {
			return lineAt(off), "unterminated quoted value"
		}
		return lineAt(len(src)), "unterminated quoted value"
	}
	return 1, msg
}

// Expand reads every command's env_file (a relative path is taken from
// dir, the directory of the file that declares it) and puts their
// variables in front of its envp: a later file wins over an earlier one,
// envp and the workspace's permissions.env win over both. EnvFile is left
// empty. Errors name the command's path in the file.
func Expand(u *messages.UpFile, dir string) error {
	cache := make(map[string]map[string]string)
	for i := range u.Workspaces {
		w := &u.Workspaces[i]
		for j := range w.Commands {
			c := &w.Commands[j]
			if len(c.EnvFile) == 0 {
				continue
			}
			where := fmt.Sprintf("workspaces[%d].commands[%d].env_file", i, j)
			merged := make(map[string]string)
			for k, f := range c.EnvFile {
				if !filepath.IsAbs(f) {
					f = filepath.Join(dir, f)
				}
				vars, ok := cache[f]
				if !ok {
					var err error
					if vars, err = Read(f); err != nil {
						return fmt.Errorf("%s[%d]: %w", where, k, err)
					}
					cache[f] = vars
				}
				for key, v := range vars {
					merged[key] = v
				}
			}
			if c.Payload.Native == nil {
				return fmt.Errorf("%s: the command has no native payload", where)
			}
			explicit := make(map[string]bool)
			for _, e := range c.Payload.Native.Envp {
				k, _, _ := strings.Cut(e, "=")
				explicit[k] = true
			}
			keys := make([]string, 0, len(merged))
			for k := range merged {
				if !explicit[k] {
					if _, base := w.Permissions.Env[k]; !base {
						keys = append(keys, k)
					}
				}
			}
			sort.Strings(keys)
			envp := make([]string, 0, len(keys)+len(c.Payload.Native.Envp))
			for _, k := range keys {
				envp = append(envp, k+"="+merged[k])
			}
			native := *c.Payload.Native
			native.Envp = append(envp, native.Envp...)
			c.Payload.Native = &native
			c.EnvFile = nil
		}
	}
	return nil
}
