// Command jepush deploys an app directory to its servers: it bundles the
// directory, uploads the bundle over SSH (or to the agent on this machine)
// and watches the deploy until the new version is live. See docs/jepush.md.
package main

import (
	"os"

	"github.com/jecloud/jecloud/client/command"
)

func main() {
	os.Exit(command.Main(os.Args))
}
