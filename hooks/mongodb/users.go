package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jecloud/jecloud/hooks/internal/retry"
	"github.com/jecloud/jecloud/hooks/internal/svcfile"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// connect opens a client for the instance as user (none: unauthenticated).
func connect(i instance, user, password string) (*mongo.Client, error) {
	o := options.Client().
		ApplyURI(fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", i.port)).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second)
	if user != "" {
		o.SetAuth(options.Credential{Username: user, Password: password, AuthSource: "admin"})
	}
	return mongo.Connect(o)
}

// ensureUsers waits for the instance, makes sure its administrator and the
// app's user exist with the passwords kept in APP/ENV (root-only files),
// and returns the app's password. The first administrator is created
// through mongod's localhost exception, which is open only while the
// instance has no user at all.
func ensureUsers(ctx context.Context, i instance, timeout time.Duration) (string, error) {
	adminPW, err := svcfile.Password(i.adminPasswordFile())
	if err != nil {
		return "", err
	}
	appPW, err := svcfile.Password(i.appPasswordFile())
	if err != nil {
		return "", err
	}
	admin, err := waitAdmin(ctx, i, adminPW, timeout)
	if err != nil {
		return "", err
	}
	defer admin.Disconnect(context.Background())
	db := admin.Database("admin")
	var info struct {
		Users []bson.Raw `bson:"users"`
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "usersInfo", Value: appUser}}).Decode(&info); err != nil {
		return "", fmt.Errorf("usersInfo: %w", err)
	}
	roles := bson.A{bson.D{{Key: "role", Value: "readWrite"}, {Key: "db", Value: i.database()}},
		bson.D{{Key: "role", Value: "dbAdmin"}, {Key: "db", Value: i.database()}}}
	cmd := bson.D{{Key: "createUser", Value: appUser}, {Key: "pwd", Value: appPW}, {Key: "roles", Value: roles}}
	if len(info.Users) > 0 {
		cmd[0].Key = "updateUser"
	}
	if err := db.RunCommand(ctx, cmd).Err(); err != nil {
		return "", fmt.Errorf("%s user %q: %w", cmd[0].Key, appUser, err)
	}
	c, err := connect(i, appUser, appPW)
	if err != nil {
		return "", err
	}
	defer c.Disconnect(context.Background())
	if err := c.Database(i.database()).RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return "", fmt.Errorf("the app's user cannot log in: %w", err)
	}
	return appPW, nil
}

// waitAdmin returns a client logged in as the administrator, creating that
// user through the localhost exception on a fresh instance.
func waitAdmin(ctx context.Context, i instance, password string, timeout time.Duration) (*mongo.Client, error) {
	var c *mongo.Client
	err := retry.Until(ctx, timeout, 500*time.Millisecond, func() (err error) {
		c, err = adminOnce(ctx, i, password)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("no administrator login on port %d after %s: %w", i.port, timeout, err)
		}
		return nil, err
	}
	return c, nil
}

func adminOnce(ctx context.Context, i instance, password string) (*mongo.Client, error) {
	c, err := login(ctx, i, adminUser, password)
	if err == nil || !isAuthFailure(err) {
		return c, err
	}
	// A fresh instance: create the administrator without logging in.
	anon, err2 := connect(i, "", "")
	if err2 != nil {
		return nil, err2
	}
	defer anon.Disconnect(context.Background())
	create := bson.D{{Key: "createUser", Value: adminUser}, {Key: "pwd", Value: password},
		{Key: "roles", Value: bson.A{bson.D{{Key: "role", Value: "root"}, {Key: "db", Value: "admin"}}}}}
	if err2 := anon.Database("admin").RunCommand(ctx, create).Err(); err2 != nil {
		return nil, fmt.Errorf("administrator login failed (%v) and creating it through the localhost exception failed (%v): "+
			"if the instance has users made elsewhere, put the password of %q in %s", err, err2, adminUser, i.adminPasswordFile())
	}
	return login(ctx, i, adminUser, password)
}

// login connects as user and checks the login with a ping.
func login(ctx context.Context, i instance, user, password string) (*mongo.Client, error) {
	c, err := connect(i, user, password)
	if err != nil {
		return nil, err
	}
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		c.Disconnect(context.Background())
		return nil, err
	}
	return c, nil
}

// isAuthFailure reports whether err is a refused login (as opposed to a
// server that is not up yet).
func isAuthFailure(err error) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) && (ce.Code == 18 || ce.Code == 11) { // AuthenticationFailed, UserNotFound
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "AuthenticationFailed") || strings.Contains(msg, "auth error") ||
		strings.Contains(msg, "UserNotFound")
}
