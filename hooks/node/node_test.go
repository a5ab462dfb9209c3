package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/placement"
)

// mirror makes a local Node.js mirror with the given versions (tarballs
// holding a bin/node script) and an index.json listing them newest first.
func mirror(t *testing.T, versions []string, lts map[string]bool) string {
	t.Helper()
	dir := t.TempDir()
	var index []string
	for _, v := range versions {
		name := fmt.Sprintf("node-v%s-linux-%s", v, arch())
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		body := "#!/bin/sh\necho v" + v + "\n"
		tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: name + "/bin/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: name + "/bin/node", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
		io.WriteString(tw, body)
		tw.WriteHeader(&tar.Header{Name: name + "/bin/npm", Typeflag: tar.TypeSymlink, Linkname: "../lib/npm-cli.js"})
		tw.Close()
		zw.Close()
		os.MkdirAll(filepath.Join(dir, "v"+v), 0o755)
		os.WriteFile(filepath.Join(dir, "v"+v, name+".tar.gz"), buf.Bytes(), 0o644)
		sum := sha256.Sum256(buf.Bytes())
		os.WriteFile(filepath.Join(dir, "v"+v, "SHASUMS256.txt"), []byte(hex.EncodeToString(sum[:])+"  "+name+".tar.gz\n"), 0o644)
		l := "false"
		if lts[v] {
			l = `"Iron"`
		}
		index = append(index, fmt.Sprintf(`{"version":"v%s","lts":%s}`, v, l))
	}
	os.WriteFile(filepath.Join(dir, "index.json"), []byte("["+strings.Join(index, ",")+"]"), 0o644)
	return dir
}

func TestResolve(t *testing.T) {
	m := mirror(t, []string{"22.1.0", "20.11.1", "20.10.0", "18.19.0"}, map[string]bool{"20.11.1": true, "20.10.0": true, "18.19.0": true})
	rt := &Runtimes{Dir: t.TempDir(), Mirror: m}
	ctx := context.Background()
	for _, tc := range []struct{ engine, want, err string }{
		{"20.10.0", "20.10.0", ""},
		{"v18.19.0", "18.19.0", ""},
		{"20.x", "20.11.1", ""},
		{"^20.1", "20.11.1", ""},
		{"~20.10", "20.10.0", ""},
		{">=18 <21", "20.11.1", ""},
		{"18 || 22", "22.1.0", ""},
		{"", "20.11.1", ""}, // newest LTS
		{"16.x", "", `no Node.js release on ` + m + ` matches engines.node "16.x"`},
		{"latest please", "", `engines.node "latest please" is neither`},
	} {
		got, err := rt.Resolve(ctx, tc.engine)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Resolve(%q) = %q, %v; want error %q", tc.engine, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %s", tc.engine, got, err, tc.want)
		}
	}
}

func TestInstall(t *testing.T) {
	m := mirror(t, []string{"20.11.1", "18.19.0"}, nil)
	rt := &Runtimes{Dir: t.TempDir(), Mirror: m}
	ctx := context.Background()
	var log bytes.Buffer
	bin, err := rt.Install(ctx, "20.11.1", &log)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(bin, "node")); !strings.Contains(string(b), "v20.11.1") {
		t.Fatalf("bin/node = %q", b)
	}
	if target, _ := os.Readlink(filepath.Join(bin, "npm")); target != "../lib/npm-cli.js" {
		t.Errorf("npm link -> %q", target)
	}
	// Side by side, once each.
	if _, err := rt.Install(ctx, "18.19.0", &log); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if _, err := rt.Install(ctx, "20.11.1", &log); err != nil || log.Len() != 0 {
		t.Fatalf("second install of 20.11.1: %v %q", err, log.String())
	}
	// Without the mirror, a range resolves to what is installed.
	rt.Mirror = filepath.Join(t.TempDir(), "gone")
	if v, err := rt.Resolve(ctx, "18.x"); err != nil || v != "18.19.0" {
		t.Errorf("offline Resolve = %q, %v", v, err)
	}

	// A tarball that does not match SHASUMS256.txt is refused and leaves nothing.
	m2 := mirror(t, []string{"21.0.0"}, nil)
	tb := filepath.Join(m2, "v21.0.0", fmt.Sprintf("node-v21.0.0-linux-%s.tar.gz", arch()))
	other, _ := os.ReadFile(filepath.Join(m, "v18.19.0", fmt.Sprintf("node-v18.19.0-linux-%s.tar.gz", arch())))
	os.WriteFile(tb, other, 0o644)
	rt = &Runtimes{Dir: t.TempDir(), Mirror: m2}
	if _, err := rt.Install(ctx, "21.0.0", &log); err == nil || !strings.Contains(err.Error(), "SHASUMS256.txt says") {
		t.Fatalf("corrupt tarball: %v", err)
	}
	if entries, _ := os.ReadDir(rt.Dir); len(entries) != 0 {
		t.Errorf("leftovers: %v", entries)
	}
	if _, err := rt.Install(ctx, "99.0.0", &log); err == nil {
		t.Error("a version the mirror lacks installed")
	}
}

func TestUnits(t *testing.T) {
	u := appUnits{App: "shop", Env: "prod", User: "jc-shop_prod", Root: "/var/cloud", AppDir: "/var/cloud/shop/prod",
		ReleaseDir: "/var/cloud/shop/prod/source/versions/841bc9a0e2f1", NodeBin: "/var/cloud/sys/runtimes/node/20.11.1/bin",
		Port: 5000, Socket: true,
		Grace: func(typ string) time.Duration {
			if typ == "worker" {
				return 10 * time.Minute
			}
			return 30 * time.Second
		},
		Limits: func(typ string) appspec.Limits {
			if typ == "worker" {
				return appspec.Limits{Memory: "1G", Tasks: 64, CPUWeight: 50}
			}
			return (&appspec.Spec{}).LimitsOf(typ)
		},
		Processes: map[string]string{"web": "node server.js", "worker": "node worker.js --rate=50%"},
		VarsFile:  "/var/cloud/shop/prod/source/versions/841bc9a0e2f1.vars.env"}
	s := u.render()
	web := s.files["jecloud-shop_prod_web@.service"]
	for _, want := range []string{
		"User=jc-shop_prod", "WorkingDirectory=/var/cloud/shop/prod/source/versions/841bc9a0e2f1",
		`Environment="PORT=5000"`, `Environment="NODE_ENV=production"`,
		// Issue #20 §7: the hooks' vars, in a file (a unit file is world-readable), between the services' and the config vars.
		"EnvironmentFile=-/var/cloud/shop/prod/services.env\nEnvironmentFile=-/var/cloud/shop/prod/source/versions/841bc9a0e2f1.vars.env\nEnvironmentFile=-/var/cloud/shop/prod/config.env\n", "ExecStart=/bin/sh -c 'exec node server.js'",
		"Restart=always", "StartLimitIntervalSec=0", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
		"PrivateTmp=yes", "ReadWritePaths=/var/cloud/shop/prod/data /var/cloud/shop/prod/home",
		"InaccessiblePaths=-/var/cloud/sys/server.json", "InaccessiblePaths=-/var/cloud/sys/hooks.d", "Requires=jecloud-shop_prod_web@%i.socket", "WantedBy=multi-user.target",
		// Issue #17: of /var/cloud, only its own release, Node.js, data and home.
		"TemporaryFileSystem=/var/cloud:ro",
		"BindReadOnlyPaths=/var/cloud/shop/prod/source/versions/841bc9a0e2f1 /var/cloud/sys/runtimes/node/20.11.1\n",
		"BindPaths=/var/cloud/shop/prod/data /var/cloud/shop/prod/home\n",
		"TasksMax=512\n", "MemoryHigh=45%\n", "MemoryMax=50%\n", "CPUWeight=100\n", "IPAddressDeny=169.254.169.254 fd00:ec2::254\n",
	} {
		if !strings.Contains(web, want) {
			t.Errorf("web unit lacks %q:\n%s", want, web)
		}
	}
	worker := s.files["jecloud-shop_prod_worker@.service"]
	if strings.Contains(worker, "PORT=") || !strings.Contains(worker, "--rate=50%%") || !strings.Contains(worker, "TimeoutStopSec=600\n") ||
		!strings.Contains(worker, "TasksMax=64\nMemoryHigh=966367641\nMemoryMax=1G\nCPUWeight=50\n") {
		t.Errorf("worker unit:\n%s", worker)
	}
	if !strings.Contains(web, "TimeoutStopSec=30\n") {
		t.Errorf("web unit: the default grace is not 30 s")
	}
	sock := s.files["jecloud-shop_prod_web@.socket"]
	for _, want := range []string{"ListenStream=5000", "ReusePort=yes", "Service=jecloud-shop_prod_web@%i.service"} {
		if !strings.Contains(sock, want) {
			t.Errorf("socket unit lacks %q:\n%s", want, sock)
		}
	}
	u.Socket = false
	if s := u.render(); len(s.files) != 2 {
		t.Errorf("without socket activation: %v", s.files)
	}
	if got := instance("jecloud-shop_prod_web@.service", 2); got != "jecloud-shop_prod_web@2.service" {
		t.Errorf("instance = %s", got)
	}
}

func TestPlace(t *testing.T) {
	spec := &appspec.Spec{Processes: map[string]string{"web": "a", "worker": "b"}, Scale: map[string]int{"worker": 2},
		Roles: placement.Map{"worker": "worker"}}
	var log strings.Builder
	place(spec, &placement.Server{Role: "worker", Roles: []string{"web", "worker"}}, &log)
	if spec.Instances("web") != 0 || spec.Instances("worker") != 2 {
		t.Errorf("worker server: scale %v", spec.Scale)
	}
	if want := "this is a worker server: it runs worker=2; elsewhere: web (web servers)\n"; log.String() != want {
		t.Errorf("log %q, want %q", log.String(), want)
	}
	spec.Scale = map[string]int{"worker": 2}
	place(spec, nil, &log)
	if spec.Instances("web") != 1 || spec.Instances("worker") != 2 {
		t.Errorf("never placed: scale %v", spec.Scale)
	}
}

// TestExecStart: the web command reaches /bin/sh exactly, whatever it
// holds (specifiers, variables, quotes, backslashes, a newline that would
// add a line to the unit), and runs in place of the shell.
func TestExecStart(t *testing.T) {
	for cmd, line := range map[string]string{
		"node server.js":                                         "exec node server.js",
		"node --max-old-space-size=512 app.js":                   "exec node --max-old-space-size=512 app.js",
		"NODE_ENV=production node ./bin/www":                     "NODE_ENV=production exec node ./bin/www",
		"exec node s.js":                                         "exec node s.js",
		`X='50%$HOME\t'"'" node s.js ${PORT}`:                    `X='50%$HOME\t'"'" exec node s.js ${PORT}`,
		"node s.js\nExecStartPre=+/bin/sh -c 'id > /root/pwned'": "node s.js\nExecStartPre=+/bin/sh -c 'id > /root/pwned'",
		// More than one command: the shell runs it as written (exec
		// would run the first command only, or fail on `exec cd`).
		"cd api && ./serve":                            "cd api && ./serve",
		"while true; do echo tick; sleep 2; done":      "while true; do echo tick; sleep 2; done",
		"bin/migrate; exec python3 app.py":             "bin/migrate; exec python3 app.py",
		"node s.js %n %i $$ $USER \\\n \\x41 \x01\x7f": "exec node s.js %n %i $$ $USER \\\n \\x41 \x01\x7f",
	} {
		u := appUnits{App: "shop", Env: "prod", User: "jc-shop_prod", Root: "/var/cloud", AppDir: "/var/cloud/shop/prod",
			ReleaseDir: "/r", NodeBin: "/n", Port: 5000, Socket: true, Processes: map[string]string{"web": cmd}}
		file := u.render().files["jecloud-shop_prod_web@.service"]
		var execStart []string
		for _, l := range strings.Split(file, "\n") {
			if strings.HasPrefix(l, "ExecStart") {
				execStart = append(execStart, l)
			}
		}
		if len(execStart) != 1 || !strings.HasPrefix(execStart[0], "ExecStart=") {
			t.Errorf("%q: the unit's ExecStart lines: %q", cmd, execStart)
			continue
		}
		argv, err := systemdExec(strings.TrimPrefix(execStart[0], "ExecStart="))
		if err != nil {
			t.Errorf("%q: %s: %v", cmd, execStart[0], err)
			continue
		}
		if len(argv) != 3 || argv[0] != "/bin/sh" || argv[1] != "-c" || argv[2] != line {
			t.Errorf("%q: %s runs %q, want [/bin/sh -c %q]", cmd, execStart[0], argv, line)
		}
		// SIGTERM reaches the app: it is the main process, or every
		// process gets it when the shell stays.
		mode := "KillMode=mixed\n"
		if !strings.HasPrefix(line, "exec ") && !strings.Contains(line, " exec node") {
			mode = "KillMode=control-group\n"
		}
		if !strings.Contains(file, mode) {
			t.Errorf("%q: the unit lacks %s", cmd, mode)
		}
	}
}

// systemdExec decodes an ExecStart= value as systemd does (systemd.service(5),
// "Command lines"; systemd.unit(5), "Specifiers"): specifiers, then words
// with their quotes removed and C escapes undone, then variables; it fails
// on anything it would replace or reject.
func systemdExec(v string) ([]string, error) {
	var spec strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '%' {
			if i+1 >= len(v) || v[i+1] != '%' {
				return nil, fmt.Errorf("specifier %q at %d", v[i:min(i+2, len(v))], i)
			}
			i++
		}
		spec.WriteByte(v[i])
	}
	v = spec.String()
	var argv []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\n':
			return nil, fmt.Errorf("a newline")
		case c == '\\':
			if i+1 >= len(v) {
				return nil, fmt.Errorf("a trailing backslash")
			}
			i++
			switch e := v[i]; e {
			case '\\', '\'', '"':
				w.WriteByte(e)
			case 'n':
				w.WriteByte('\n')
			case 't':
				w.WriteByte('\t')
			case 'x':
				var b byte
				if _, err := fmt.Sscanf(v[i+1:i+3], "%02x", &b); err != nil {
					return nil, fmt.Errorf("escape \\x%s", v[i+1:i+3])
				}
				w.WriteByte(b)
				i += 2
			default:
				return nil, fmt.Errorf("escape \\%c", e)
			}
			in = true
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ':
			if in {
				argv = append(argv, w.String())
				w.Reset()
				in = false
			}
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("control character %q unescaped", c)
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced quotes")
	}
	if in {
		argv = append(argv, w.String())
	}
	for k, a := range argv {
		var out strings.Builder
		for i := 0; i < len(a); i++ {
			if a[i] == '$' {
				if i+1 >= len(a) || a[i+1] != '$' {
					return nil, fmt.Errorf("variable %q in argument %d", a[i:], k)
				}
				i++
			}
			out.WriteByte(a[i])
		}
		argv[k] = out.String()
	}
	return argv, nil
}

// TestPrepareRefusesWebWithoutSocket: with [web] socket = true, a web process that would not get
// its socket fails the prepare phase (before npm runs, before the switch),
// with the reason.
func TestPrepareRefusesWebWithoutSocket(t *testing.T) {
	release := t.TempDir()
	os.WriteFile(filepath.Join(release, "package.json"), []byte(`{"name":"shop","scripts":{"start":"npm run serve","serve":"node s.js"}}`), 0o644)
	os.WriteFile(filepath.Join(release, "jecloud.toml"), []byte("[web]\nsocket = true\n"), 0o644)
	h := &Hook{Active: func() bool { return true }}
	var log strings.Builder
	_, err := h.Run(context.Background(), hook.Request{Phase: hook.Prepare, App: "shop", Env: "prod", ReleaseDir: release, Root: t.TempDir()}, &log)
	var he *hook.Error
	if !errors.As(err, &he) || he.Phase != hook.Prepare || !strings.Contains(he.Reason, `package.json: scripts.start "npm run serve" runs the app through npm`) {
		t.Fatalf("prepare: %v", err)
	}
}

// TestUnitsWithoutNode: an app with a Procfile and no package.json runs
// under the same units, with the server's runtime: no Node.js on its PATH
// or in its sandbox, no NODE_ENV.
func TestUnitsWithoutNode(t *testing.T) {
	u := appUnits{App: "py", Env: "prod", User: "jc-py_prod", Root: "/var/cloud", AppDir: "/var/cloud/py/prod",
		ReleaseDir: "/var/cloud/py/prod/source/versions/aa11", Port: 5001,
		Processes: map[string]string{"web": "python3 -m http.server $PORT", "worker": "python3 worker.py"}}
	s := u.render()
	web := s.files["jecloud-py_prod_web@.service"]
	for _, want := range []string{
		"User=jc-py_prod", `Environment="PATH=/usr/local/bin:/usr/bin:/bin"`, `Environment="PORT=5001"`,
		"ExecStart=/bin/sh -c 'exec python3 -m http.server $$PORT'",
		"BindReadOnlyPaths=/var/cloud/py/prod/source/versions/aa11\n", "EnvironmentFile=-/var/cloud/py/prod/config.env",
		"ProtectSystem=strict", "TemporaryFileSystem=/var/cloud:ro",
	} {
		if !strings.Contains(web, want) {
			t.Errorf("web unit lacks %q:\n%s", want, web)
		}
	}
	if strings.Contains(web, "NODE_ENV") || strings.Contains(web, "node_modules") || strings.Contains(web, "runtimes") {
		t.Errorf("web unit of an app without package.json mentions Node.js:\n%s", web)
	}
	if _, ok := s.files["jecloud-py_prod_worker@.service"]; !ok || len(s.files) != 2 {
		t.Errorf("units: %v", slices.Collect(maps.Keys(s.files)))
	}
}

// TestCopySite: the static site's copy holds regular files and
// directories only, readable by all; a link (inside or out) is left out.
func TestCopySite(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "css"), 0o700)
	os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>hi</h1>"), 0o600)
	os.WriteFile(filepath.Join(src, "css", "a.css"), []byte("a{}"), 0o600)
	os.WriteFile(filepath.Join(src, "jecloud.toml"), []byte("app = \"x\"\n"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(src, "passwd.html"))
	os.Symlink("index.html", filepath.Join(src, "home.html"))
	os.Symlink("/etc", filepath.Join(src, "etc"))
	dst := filepath.Join(out, "static", "app", "env", "v1")
	skipped, files, err := copySite(src, dst, true)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(skipped)
	if files != 2 || !slices.Equal(skipped, []string{"etc", "home.html", "passwd.html"}) {
		t.Errorf("files %d, skipped %v", files, skipped)
	}
	var got []string
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		fi, _ := os.Lstat(p)
		rel, _ := filepath.Rel(dst, p)
		got = append(got, fmt.Sprintf("%s %v", rel, fi.Mode()))
		return nil
	})
	want := []string{". drwxr-xr-x", "css drwxr-xr-x", "css/a.css -rw-r--r--", "index.html -rw-r--r--"}
	if !slices.Equal(got, want) {
		t.Errorf("copy:\n%v\nwant\n%v", got, want)
	}
	for _, d := range []string{"static", "static/app", "static/app/env"} {
		if fi, err := os.Stat(filepath.Join(out, d)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
	}
	// Again (an interrupted deploy of the same version): a fresh copy.
	os.WriteFile(filepath.Join(dst, "stale"), nil, 0o644)
	if _, _, err := copySite(src, dst, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "stale")); err == nil {
		t.Error("a stale file of an earlier copy stayed")
	}
}
