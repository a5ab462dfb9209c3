package appspec

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Command is a process's command line as /bin/sh reads it, as far as
// JeCloud needs to know it: the leading variable assignments, the program,
// and whether it is one simple command.
type Command struct {
	// Assigns are the leading NAME=value words, as written ("" if none).
	Assigns string
	// Exec is the rest of the line from the program on (after an `exec`
	// word, if the line has one), as written.
	Exec string
	// Program is the program's word without its quotes ("" if none).
	Program string
	// Args are the words after the program, without their quotes (up to
	// Compound; expansions are left as written).
	Args []string
	// Compound names the first thing outside quotes that makes the line
	// more than one simple command (";", "&&", "|", ">", "$(", "`", "a
	// newline", "if"...); "" if there is none.
	Compound string
}

var (
	assignRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`) })
	// Words that begin a compound command when they come first.
	reserved = map[string]bool{"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true, "done": true,
		"case": true, "esac": true, "while": true, "until": true, "for": true, "in": true, "{": true, "}": true, "!": true,
		"function": true, "select": true, "[[": true, "]]": true}
)

// ParseCommand reads s the way /bin/sh would split it into words, far
// enough to find its assignments, its program and its arguments, and any
// operator that makes it more than one simple command. It fails on an
// unterminated quote and on a control character other than a tab or a
// newline (which the shell would take as it is, but a reader could not
// see).
func ParseCommand(s string) (Command, error) {
	type word struct {
		start int
		text  string
	}
	var (
		c       Command
		words   []word
		cur     strings.Builder
		in      bool
		start   int
		stopped bool
	)
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 && b != '\t' && b != '\n' || b == 0x7f {
			return Command{}, fmt.Errorf("it holds the control character %s", strconv.QuoteRune(rune(b)))
		}
	}
	begin := func(i int) {
		if !in {
			in, start = true, i
		}
	}
	flush := func() {
		if in {
			words = append(words, word{start, cur.String()})
			cur.Reset()
			in = false
		}
	}
	i := 0
	for i < len(s) && !stopped {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			flush()
			i++
		case ch == '\n':
			c.Compound, stopped = "a newline", true
		case ch == '#' && !in:
			i = len(s) // a comment, to the end of the line
		case strings.IndexByte(";&|<>()", ch) >= 0:
			op := s[i : i+1]
			if i+1 < len(s) && strings.IndexByte("&|<>", s[i+1]) >= 0 {
				op = s[i : i+2]
			}
			c.Compound, stopped = op, true
		case ch == '`':
			c.Compound, stopped = "`", true
		case ch == '$' && i+1 < len(s) && s[i+1] == '(':
			c.Compound, stopped = "$(", true
		case ch == '\\':
			begin(i)
			if i+1 < len(s) {
				cur.WriteByte(s[i+1])
				i += 2
			} else {
				cur.WriteByte('\\')
				i++
			}
		case ch == '\'':
			begin(i)
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return Command{}, fmt.Errorf("a quote (') is not closed")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case ch == '"':
			begin(i)
			i++
			closed := false
		dq:
			for i < len(s) {
				switch d := s[i]; {
				case d == '"':
					closed = true
					i++
					break dq
				case d == '\\' && i+1 < len(s):
					if strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
						cur.WriteByte(s[i+1])
					} else {
						cur.WriteString(s[i : i+2])
					}
					i += 2
				case d == '`':
					c.Compound, stopped = "`", true
					break dq
				case d == '$' && i+1 < len(s) && s[i+1] == '(':
					c.Compound, stopped = "$(", true
					break dq
				default:
					cur.WriteByte(d)
					i++
				}
			}
			if !closed && !stopped {
				return Command{}, fmt.Errorf(`a quote (") is not closed`)
			}
		default:
			begin(i)
			cur.WriteByte(ch)
			i++
		}
	}
	flush()

	k := 0
	for k < len(words) && assignRE().MatchString(s[words[k].start:]) {
		k++
	}
	first := k
	if k < len(words) && words[k].text == "exec" && s[words[k].start:words[k].start+4] == "exec" {
		k++
	}
	if first > 0 {
		end := len(s)
		if first < len(words) {
			end = words[first].start
		}
		c.Assigns = strings.TrimSpace(s[:end])
	}
	if k < len(words) {
		c.Exec = strings.TrimSpace(s[words[k].start:])
		c.Program = words[k].text
		for _, w := range words[k+1:] {
			c.Args = append(c.Args, w.text)
		}
		if reserved[c.Program] && c.Compound == "" {
			c.Compound = c.Program
		}
	}
	return c, nil
}

// ExecLine returns the line for /bin/sh that runs the command in place of
// the shell (`exec`), with its variable assignments, so that the program
// is the process that was started: it keeps its PID (LISTEN_PID names it)
// and receives the signals itself. A line with no program is returned as
// it is.
func (c Command) ExecLine() string {
	switch {
	case c.Exec == "":
		return c.Assigns
	case c.Assigns == "":
		return "exec " + c.Exec
	}
	return c.Assigns + " exec " + c.Exec
}

// launchers are programs that run the app as their child. Each is a
// Node.js program, and Node.js makes the file descriptors it inherits
// above stderr close on exec: the child never sees the socket (fd 3). The
// value says what to do instead.
var launchers = map[string]string{
	"npm":          "",
	"npx":          "",
	"yarn":         "",
	"pnpm":         "",
	"corepack":     "",
	"pm2":          "systemd already restarts the app, and runs several instances with [scale] web = N",
	"pm2-runtime":  "systemd already restarts the app, and runs several instances with [scale] web = N",
	"forever":      "systemd already restarts the app",
	"nodemon":      "systemd already restarts the app",
	"node-dev":     "",
	"ts-node-dev":  "",
	"tsx":          "",
	"concurrently": "run each program as its own process type in a Procfile",
	"npm-run-all":  "run each program as its own process type in a Procfile",
	"run-p":        "run each program as its own process type in a Procfile",
	"run-s":        "",
	"cross-env":    "write the variables before the command instead (NODE_ENV=production node server.js)",
	"dotenv":       "set the variables as config vars (jepush config:set) instead",
	"env-cmd":      "set the variables as config vars (jepush config:set) instead",
}

// launcher returns the Node.js program through which c runs the app, and
// what to do instead ("" if c runs the app itself).
func (c Command) launcher() (name, hint string) {
	p := path.Base(c.Program)
	if hint, ok := launchers[p]; ok {
		return p, hint
	}
	if p == "node" || p == "nodejs" {
		for _, a := range c.Args {
			if a == "--watch" || strings.HasPrefix(a, "--watch=") || strings.HasPrefix(a, "--watch-path") {
				return "node " + a, "watching files is for development: systemd restarts the app when it exits"
			}
			if !strings.HasPrefix(a, "-") {
				break // the script: what follows is its own
			}
		}
	}
	return "", ""
}

// startScriptCommands are the web commands that run package.json's start
// script through a package manager.
var startScriptCommands = map[string]bool{
	"npm start": true, "npm run start": true, "npm run-script start": true,
	"yarn start": true, "yarn run start": true, "pnpm start": true, "pnpm run start": true,
}

// WebCommand returns the command the web process runs, or why it cannot
// run, naming the file to change and how.
//
// With socket activation (the default), systemd starts the web process
// with the web port's socket as fd 3. npm (and yarn, pnpm) would run the
// start script as their child without it, so a web command that runs the
// start script through one of them (`npm start`, the default without a
// Procfile) is replaced by the script itself: /bin/sh runs it in the
// release, with node_modules/.bin on PATH, as npm would, and (see
// Command.ExecLine) in place of the shell. This works for a start script
// that is one simple command; a compound one, a prestart script (which
// npm would run first), and a program known to run the app as its child
// are refused, as is such a program in the Procfile's web command. A
// package.json without a start script runs `node server.js` if the release
// has one, as npm does.
func (s *Spec) WebCommand() (string, error) {
	cmd, ok := s.Processes["web"]
	if !ok {
		return "", nil
	}
	const optOut = "or remove [web] socket = true from jecloud.toml (the app then binds $PORT itself, behind the proxy)"
	if startScriptCommands[strings.Join(strings.Fields(cmd), " ")] && s.Node != nil {
		script := strings.TrimSpace(s.Node.Start)
		if script == "" {
			if !s.Node.ServerJS {
				return "", fmt.Errorf("package.json has no start script, and the release no server.js (which %q would run instead): "+
					`add one to its scripts ("start": "node FILE"), or a Procfile with the web command (web: node FILE)`, cmd)
			}
			script = "node server.js"
		}
		if !s.Web.Socket() {
			return cmd, nil
		}
		const why = "with socket activation ([web] socket = true) the web process runs package.json's start script itself, not through %s, " +
			"which would keep the web port's socket (fd 3) from the app: "
		if pre := strings.TrimSpace(s.Node.Scripts["prestart"]); pre != "" {
			return "", fmt.Errorf("package.json: scripts.prestart %q would not run: "+why+
				"move that step into the app (before it listens) or into the build (a postinstall script), and remove prestart; %s",
				pre, packageManager(cmd), optOut)
		}
		c, err := ParseCommand(script)
		if err != nil {
			return "", fmt.Errorf("package.json: scripts.start %q: %v", script, err)
		}
		if c.Compound != "" {
			return "", fmt.Errorf("package.json: scripts.start %q is more than one command (it has %s): "+why+
				"make it the one command that serves (\"start\": \"node server.js\"; build steps go in a build or postinstall script), "+
				"or write that command in a Procfile (web: node FILE), %s", script, c.Compound, packageManager(cmd), optOut)
		}
		if c.Program == "" {
			return "", fmt.Errorf("package.json: scripts.start %q runs no program", script)
		}
		if name, hint := c.launcher(); name != "" {
			return "", fmt.Errorf("package.json: scripts.start %q runs the app through %s, "+
				"which starts it as its child without the web port's socket (fd 3) that systemd hands over (socket activation, [web] socket = true): %s; %s",
				script, name, fix(hint, `make the start script the command that serves ("start": "node server.js")`), optOut)
		}
		return script, nil
	}
	if !s.Web.Socket() {
		return cmd, nil
	}
	if c, err := ParseCommand(cmd); err == nil {
		if name, hint := c.launcher(); name != "" {
			return "", fmt.Errorf("Procfile: web: %q runs the app through %s, "+
				"which starts it as its child without the web port's socket (fd 3) that systemd hands over (socket activation, [web] socket = true): %s; %s",
				cmd, name, fix(hint, "write the command that serves (web: node FILE)"), optOut)
		}
	}
	return cmd, nil
}

func packageManager(cmd string) string { return strings.Fields(cmd)[0] }

func fix(hint, def string) string {
	if hint == "" {
		return def
	}
	return hint
}
