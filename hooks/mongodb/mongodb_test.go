package mongodb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/sysd"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestCheckVersion(t *testing.T) {
	out := "db version v7.0.14\nBuild Info: {...}\n"
	for _, tc := range []struct {
		out, want string
		ok        bool
	}{
		{out, "", true},
		{out, "7", true},
		{out, "7.0", true},
		{out, "7.0.x", true},
		{out, "7.0.14", true},
		{out, "7.0.1", false},
		{out, "6.0", false},
		{out, "8", false},
		{"mongod: command not found", "7.0", false},
	} {
		err := checkVersion("/usr/bin/mongod", tc.out, tc.want)
		if (err == nil) != tc.ok {
			t.Errorf("checkVersion(%q, want %q) = %v, want ok=%v", tc.out, tc.want, err, tc.ok)
		}
		if err != nil && tc.want != "" && strings.Contains(tc.out, "db version") && !strings.Contains(err.Error(), "7.0.14") {
			t.Errorf("the error does not say what the server has: %v", err)
		}
	}
}

func TestConfAndUnit(t *testing.T) {
	i := newInstance("/var/cloud/shop/prod", "shop", "prod")
	i.port = 27101
	conf := i.conf()
	for _, want := range []string{"dbPath: /var/cloud/shop/prod/mongodb", "port: 27101", "bindIp: 127.0.0.1", "authorization: enabled"} {
		if !strings.Contains(conf, want) {
			t.Errorf("mongod.conf lacks %q:\n%s", want, conf)
		}
	}
	u := sysd.Serialize(i.unitFile("/usr/bin/mongod"))
	for _, want := range []string{
		"ExecStart=/usr/bin/mongod --config /var/cloud/shop/prod/mongod.conf",
		"User=jc-shop_prod", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"ReadWritePaths=/var/cloud/shop/prod/mongodb", "Restart=always", "WantedBy=multi-user.target",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if got := i.url("app", "pw", "shop"); got != "mongodb://app:pw@127.0.0.1:27101/shop?authSource=admin" {
		t.Errorf("url = %q", got)
	}
}

func TestMissingServerSaysWhatToDo(t *testing.T) {
	var s settings
	s.path = "/var/cloud/sys/server.json"
	s.MongoDB.Server = filepath.Join(t.TempDir(), "mongod")
	err := ensureServer(context.Background(), s, "7.0", &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error for a missing mongod")
	}
	for _, want := range []string{s.MongoDB.Server, "7.0", "server.json", "apt", "docs/services.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	s.MongoDB.Apt.Source = "http://example.invalid/repo"
	if err := ensureServer(context.Background(), s, "7.0", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `"deb "`) {
		t.Errorf("a source line that is not a deb line: %v", err)
	}
}

// mongod returns the server binary for the tests that need one: a real
// mongod or the FerretDB stand-in (e2e/mongostandin, `make test` builds
// it). Without one they are skipped, except in CI.
func mongod(t *testing.T) string {
	if p := os.Getenv("JECLOUD_MONGOD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("mongod"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no mongod: set JECLOUD_MONGOD (make test builds the stand-in, e2e/mongostandin)")
	}
	t.Skip("no mongod: set JECLOUD_MONGOD=PATH (make test builds the FerretDB stand-in in e2e/mongostandin)")
	return ""
}

// startServer runs server on a free port with the instance's mongod.conf,
// as this user (no systemd), until the test ends.
func startServer(t *testing.T, server string) instance {
	root := t.TempDir()
	i := newInstance(filepath.Join(root, "shop", "prod"), "shop", "prod")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	i.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := os.MkdirAll(i.dataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(i.confPath(), []byte(i.conf()), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := fmt.Sprintf(`{"mongodb": %d}`, i.port)
	if err := os.WriteFile(filepath.Join(i.dir, "ports.json"), []byte(ports), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(server, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v: %s", server, err, out)
	}
	if err := checkVersion(server, string(out), "7"); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(server, "--config", i.confPath())
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", logs.String())
		}
	})
	return i
}

func TestUsersDumpRestore(t *testing.T) {
	i := startServer(t, mongod(t))
	ctx := t.Context()
	appPW, err := ensureUsers(ctx, i, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Twice: the second run finds both users and changes nothing.
	if again, err := ensureUsers(ctx, i, 30*time.Second); err != nil || again != appPW {
		t.Fatalf("second ensureUsers: %q, %v", again, err)
	}
	for _, f := range []string{i.adminPasswordFile(), i.appPasswordFile()} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v (want 0600)", f, fi, err)
		}
	}
	// Without a login nothing is readable.
	anon, err := connect(i, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Disconnect(ctx)
	if _, err := anon.Database("shop").Collection("x").CountDocuments(ctx, bson.D{}); err == nil {
		t.Error("an unauthenticated client can read")
	}
	if err := anon.Database("admin").RunCommand(ctx, bson.D{{Key: "createUser", Value: "intruder"},
		{Key: "pwd", Value: "x"}, {Key: "roles", Value: bson.A{}}}).Err(); err == nil {
		t.Error("the localhost exception is still open after the first user")
	}

	// The app writes through its URL.
	app, err := mongo.Connect(options.Client().ApplyURI(i.url(appUser, appPW, i.database())))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Disconnect(ctx)
	db := app.Database(i.database())
	var docs []any
	for n := range 2500 {
		docs = append(docs, bson.D{{Key: "_id", Value: n}, {Key: "name", Value: fmt.Sprintf("n%d", n)},
			{Key: "sub", Value: bson.D{{Key: "x", Value: float64(n) / 7}, {Key: "tags", Value: bson.A{"a", int64(n)}}}}})
	}
	if _, err := db.Collection("items").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("items").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "name", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Database(i.database()).Collection("empty").InsertOne(ctx, bson.D{{Key: "_id", Value: "only"}}); err != nil {
		t.Fatal(err)
	}
	before := digest(t, db)

	hook := New()
	inst := backup.Instance{Root: filepath.Dir(filepath.Dir(i.dir)), App: i.app, Env: i.env, Service: "mongodb"}
	var dumped bytes.Buffer
	if err := hook.Dump(ctx, inst, &dumped, t.Output()); err != nil {
		t.Fatal(err)
	}
	// Change the data, then restore.
	if err := db.Collection("items").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("other").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if digest(t, db) == before {
		t.Fatal("the change did not change the digest")
	}
	if err := hook.Restore(ctx, inst, bytes.NewReader(dumped.Bytes()), t.Output()); err != nil {
		t.Fatal(err)
	}
	if after := digest(t, db); after != before {
		t.Errorf("restored data differs:\nbefore %s\nafter  %s", before, after)
	}
	// The index came back: a duplicate name is refused.
	if _, err := db.Collection("items").InsertOne(ctx, bson.D{{Key: "name", Value: "n1"}}); err == nil {
		t.Error("the unique index on name was not restored")
	}
	// What the restore replaced was kept.
	if fi, err := os.Stat(filepath.Join(i.dir, "mongodb.before-restore")); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("mongodb.before-restore: %v, %v", fi, err)
	}
	// A truncated dump is refused with a clear error.
	err = hook.Restore(ctx, inst, bytes.NewReader(dumped.Bytes()[:dumped.Len()/2]), t.Output())
	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "before-restore") {
		t.Errorf("restore of a truncated dump: %v", err)
	}
}

// digest describes every document of db, collection by collection.
func digest(t *testing.T, db *mongo.Database) string {
	t.Helper()
	names, err := db.ListCollectionNames(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	h := sha256.New()
	var b strings.Builder
	for _, name := range names {
		cur, err := db.Collection(name).Find(t.Context(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for cur.Next(t.Context()) {
			fmt.Fprintf(h, "%s %x\n", name, []byte(cur.Current))
			n++
		}
		cur.Close(t.Context())
		fmt.Fprintf(&b, "%s: %d\n", name, n)
	}
	fmt.Fprintf(&b, "%x", h.Sum(nil)[:8])
	return b.String()
}
