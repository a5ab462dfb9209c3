// Command jeagent-tick is the roll-forward the systemd timer starts every
// minute: it ends at once when there is nothing to do, and runs
// `jeagent rollforward` otherwise. See internal/tick.
package main

import (
	"os"

	"github.com/jecloud/jecloud/internal/tick"
)

func main() { os.Exit(tick.Main(os.Args, os.Getenv, os.Stderr)) }
