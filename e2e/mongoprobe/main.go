// Command mongoprobe is the end-to-end tests' MongoDB client: it writes
// known data through a MONGO_URL, changes it, and prints a digest of every
// document of the URL's database, so that a test can check that a restore
// gives back identical data. Usage: mongoprobe write|change|digest|ping URL
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mongoprobe write|change|digest|ping URL")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "mongoprobe:", err)
		os.Exit(1)
	}
}

func run(what, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(url).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	cs, err := connstring.Parse(url)
	if err != nil {
		return err
	}
	db := c.Database(cs.Database)
	switch what {
	case "ping":
		return db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
	case "write":
		var users, orders []any
		for n := range 500 {
			users = append(users, bson.D{{Key: "_id", Value: n}, {Key: "name", Value: fmt.Sprintf("user %d", n)},
				{Key: "tags", Value: bson.A{"a", n % 7}}, {Key: "nested", Value: bson.D{{Key: "score", Value: float64(n) / 3}}}})
			orders = append(orders, bson.D{{Key: "_id", Value: fmt.Sprintf("o%04d", n)}, {Key: "user", Value: n},
				{Key: "total", Value: int64(n * 100)}, {Key: "at", Value: time.Date(2026, 1, 1, 0, n, 0, 0, time.UTC)}})
		}
		if _, err := db.Collection("users").InsertMany(ctx, users); err != nil {
			return err
		}
		if _, err := db.Collection("users").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}}}); err != nil {
			return err
		}
		_, err := db.Collection("orders").InsertMany(ctx, orders)
		return err
	case "change":
		if err := db.Collection("orders").Drop(ctx); err != nil {
			return err
		}
		_, err := db.Collection("users").UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "changed"}}}})
		return err
	case "digest":
		names, err := db.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return err
		}
		slices.Sort(names)
		h := sha256.New()
		total := 0
		for _, name := range names {
			cur, err := db.Collection(name).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
			if err != nil {
				return err
			}
			for cur.Next(ctx) {
				fmt.Fprintf(h, "%s\n%x\n", name, []byte(cur.Current))
				total++
			}
			if err := cur.Err(); err != nil {
				return err
			}
			cur.Close(ctx)
		}
		fmt.Printf("%v %d documents %x\n", names, total, h.Sum(nil)[:8])
		return nil
	}
	return fmt.Errorf("unknown action %q", what)
}
