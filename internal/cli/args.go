// This file owns reading the process's arguments.

package cli

import "os"

func osArgs() []string { return os.Args[1:] }
