// Command unwind is the command-line front end of the unwind library: it
// prints backtraces from crash dumps, symbolizes addresses, and runs the
// embedded entry-path emulator. See `unwind --help`.
package main

import (
	"os"

	"github.com/unwind-dev/unwind/internal/cli"
)

func main() { os.Exit(cli.Main()) }
