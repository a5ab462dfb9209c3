// Command jeagent runs on every server: it owns /var/cloud and rolls it
// forward until the server matches what its state files ask for.
package main

import (
	"os"

	"github.com/jecloud/jecloud/agent/command"
)

func main() { os.Exit(command.Main(os.Args)) }
