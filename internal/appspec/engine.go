package appspec

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
)

// NodeEngine reads engines.node as the node hook resolves it: an exact
// version ("20.11.1", "v20.11.1") or an npm-style range ("20.x",
// "^20.11", ">=18 <21"); "" is neither (the newest LTS release). It refuses
// what is neither, and a range no version at all can satisfy (">=22 <20").
// Whether a Node.js release satisfies a range is known only from a list of
// releases, which the server reads from its mirror when it resolves the
// range (hooks/node): offline, jepush checks the syntax and this.
func NodeEngine(constraint string) (exact *semver.Version, rng *semver.Constraints, err error) {
	c := strings.TrimPrefix(strings.TrimSpace(constraint), "v")
	if c == "" {
		return nil, nil, nil
	}
	if v, err := semver.StrictNewVersion(c); err == nil {
		return v, nil, nil
	}
	if rng, err = semver.NewConstraint(c); err != nil {
		return nil, nil, fmt.Errorf("engines.node %q is neither a version nor a range (%v): write e.g. \"20.11.1\" or \"20.x\"", constraint, err)
	}
	if !satisfiable(c, rng) {
		return nil, nil, fmt.Errorf("engines.node %q: no version satisfies it (its bounds contradict each other): write e.g. \">=18 <21\" or \"20.x\"", constraint)
	}
	return nil, rng, nil
}

var versionInRangeRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`[0-9]+(\.([0-9]+|[xX*]))*`)
})

// satisfiable reports whether some version satisfies rng: the lowest
// version of every interval of a range is 0.0.0, one of the versions the
// range names, or the one just above it, so those are tried.
func satisfiable(c string, rng *semver.Constraints) bool {
	try := []semver.Version{*semver.New(0, 0, 0, "", "")}
	for _, m := range versionInRangeRE().FindAllString(c, -1) {
		m = strings.NewReplacer("x", "0", "X", "0", "*", "0").Replace(m)
		v, err := semver.NewVersion(m)
		if err != nil {
			continue
		}
		try = append(try, *v, v.IncPatch(), v.IncMinor(), v.IncMajor())
	}
	for i := range try {
		if rng.Check(&try[i]) {
			return true
		}
	}
	return false
}
