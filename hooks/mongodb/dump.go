package mongodb

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A dump ("jecloud-mongodump" version 1) is a stream of records, each a
// kind byte followed by one BSON document:
//
//	'H' header     {format, version, created}
//	'C' collection {db, name, options, indexes}; the documents that follow belong to it
//	'D' a document of the last collection, as stored
//	'E' end        {collections, documents}; a dump without it is truncated
//
// It holds every database of the instance but admin, local and config
// (users live in admin and are kept as they are). Like mongodump without
// --oplog, it is consistent per document, not across collections.
const (
	dumpFormat  = "jecloud-mongodump"
	dumpVersion = 1
)

const (
	kindHeader     = 'H'
	kindCollection = 'C'
	kindDocument   = 'D'
	kindEnd        = 'E'
)

var systemDatabases = []string{"admin", "local", "config"}

// dump writes every user database of the instance reached by c to w.
func dump(ctx context.Context, c *mongo.Client, w io.Writer) (collections, documents int, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	put := func(kind byte, doc any) error {
		b, err := bson.Marshal(doc)
		if err != nil {
			return err
		}
		if err := bw.WriteByte(kind); err != nil {
			return err
		}
		_, err = bw.Write(b)
		return err
	}
	if err := put(kindHeader, bson.D{{Key: "format", Value: dumpFormat}, {Key: "version", Value: dumpVersion},
		{Key: "created", Value: time.Now().UTC()}}); err != nil {
		return 0, 0, err
	}
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return 0, 0, fmt.Errorf("listDatabases: %w", err)
	}
	slices.Sort(dbs)
	for _, name := range dbs {
		if slices.Contains(systemDatabases, name) {
			continue
		}
		db := c.Database(name)
		specs, err := db.ListCollectionSpecifications(ctx, bson.D{})
		if err != nil {
			return 0, 0, fmt.Errorf("listCollections of %s: %w", name, err)
		}
		slices.SortFunc(specs, func(a, b mongo.CollectionSpecification) int { return cmpString(a.Name, b.Name) })
		for _, spec := range specs {
			if spec.Type == "view" || len(spec.Name) > 7 && spec.Name[:7] == "system." {
				continue
			}
			coll := db.Collection(spec.Name)
			indexes, err := listIndexes(ctx, coll)
			if err != nil {
				return 0, 0, err
			}
			head := bson.D{{Key: "db", Value: name}, {Key: "name", Value: spec.Name}, {Key: "indexes", Value: indexes}}
			if spec.Options != nil {
				head = append(head, bson.E{Key: "options", Value: spec.Options})
			}
			if err := put(kindCollection, head); err != nil {
				return 0, 0, err
			}
			collections++
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
			if err != nil {
				return 0, 0, fmt.Errorf("find in %s.%s: %w", name, spec.Name, err)
			}
			for cur.Next(ctx) {
				if err := bw.WriteByte(kindDocument); err != nil {
					cur.Close(ctx)
					return 0, 0, err
				}
				if _, err := bw.Write(cur.Current); err != nil {
					cur.Close(ctx)
					return 0, 0, err
				}
				documents++
			}
			err = cur.Err()
			cur.Close(ctx)
			if err != nil {
				return 0, 0, fmt.Errorf("reading %s.%s: %w", name, spec.Name, err)
			}
		}
	}
	if err := put(kindEnd, bson.D{{Key: "collections", Value: collections}, {Key: "documents", Value: documents}}); err != nil {
		return 0, 0, err
	}
	return collections, documents, bw.Flush()
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// listIndexes returns the collection's index specifications but _id's.
func listIndexes(ctx context.Context, coll *mongo.Collection) (bson.A, error) {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listIndexes of %s: %w", coll.Name(), err)
	}
	defer cur.Close(ctx)
	var out bson.A
	for cur.Next(ctx) {
		var spec bson.D
		if err := bson.Unmarshal(cur.Current, &spec); err != nil {
			return nil, err
		}
		var keep bson.D
		name := ""
		for _, e := range spec {
			switch e.Key {
			case "v", "ns":
				continue
			case "name":
				name, _ = e.Value.(string)
			}
			keep = append(keep, e)
		}
		if name != "_id_" {
			out = append(out, keep)
		}
	}
	return out, cur.Err()
}

// dumpReader reads the records of a dump.
type dumpReader struct {
	r *bufio.Reader
}

// next returns the next record; io.ErrUnexpectedEOF when the stream ends
// before its end record.
func (d *dumpReader) next() (byte, bson.Raw, error) {
	kind, err := d.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("the dump is truncated: %w", err)
	}
	var size [4]byte
	if _, err := io.ReadFull(d.r, size[:]); err != nil {
		return 0, nil, fmt.Errorf("the dump is truncated: %w", io.ErrUnexpectedEOF)
	}
	n := binary.LittleEndian.Uint32(size[:])
	if n < 5 || n > 48<<20 {
		return 0, nil, fmt.Errorf("the dump is damaged: a document of %d bytes", n)
	}
	doc := make([]byte, n)
	copy(doc, size[:])
	if _, err := io.ReadFull(d.r, doc[4:]); err != nil {
		return 0, nil, fmt.Errorf("the dump is truncated: %w", io.ErrUnexpectedEOF)
	}
	if err := bson.Raw(doc).Validate(); err != nil {
		return 0, nil, fmt.Errorf("the dump is damaged: %w", err)
	}
	return kind, doc, nil
}

// restore replaces every user database of the instance reached by c with
// the dump read from r. The dump is read whole before anything is dropped
// only up to its header; a damaged stream stops the restore with an error
// (the caller verified the backup's checksum before).
func restore(ctx context.Context, c *mongo.Client, r io.Reader) (collections, documents int, err error) {
	d := &dumpReader{r: bufio.NewReaderSize(r, 1<<20)}
	kind, head, err := d.next()
	if err != nil {
		return 0, 0, err
	}
	if kind != kindHeader || head.Lookup("format").StringValue() != dumpFormat {
		return 0, 0, fmt.Errorf("not a %s stream", dumpFormat)
	}
	if v, _ := head.Lookup("version").AsInt64OK(); v != dumpVersion {
		return 0, 0, fmt.Errorf("%s version %d: this jeagent reads version %d", dumpFormat, v, dumpVersion)
	}
	if err := dropUserDatabases(ctx, c); err != nil {
		return 0, 0, err
	}
	var coll *mongo.Collection
	var batch []any
	var batchBytes int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(true))
		batch, batchBytes = batch[:0], 0
		if err != nil {
			return fmt.Errorf("inserting into %s: %w", coll.Name(), err)
		}
		return nil
	}
	for {
		kind, doc, err := d.next()
		if err != nil {
			return 0, 0, err
		}
		switch kind {
		case kindCollection:
			if err := flush(); err != nil {
				return 0, 0, err
			}
			if coll, err = createCollection(ctx, c, doc); err != nil {
				return 0, 0, err
			}
			collections++
		case kindDocument:
			if coll == nil {
				return 0, 0, errors.New("the dump is damaged: a document before any collection")
			}
			batch = append(batch, doc)
			batchBytes += len(doc)
			documents++
			if len(batch) >= 1000 || batchBytes >= 8<<20 {
				if err := flush(); err != nil {
					return 0, 0, err
				}
			}
		case kindEnd:
			if err := flush(); err != nil {
				return 0, 0, err
			}
			want, _ := doc.Lookup("documents").AsInt64OK()
			if int64(documents) != want {
				return 0, 0, fmt.Errorf("the dump says %d documents but holds %d", want, documents)
			}
			return collections, documents, nil
		default:
			return 0, 0, fmt.Errorf("the dump is damaged: record kind %q", kind)
		}
	}
}

func dropUserDatabases(ctx context.Context, c *mongo.Client) error {
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("listDatabases: %w", err)
	}
	for _, name := range dbs {
		if slices.Contains(systemDatabases, name) {
			continue
		}
		if err := c.Database(name).Drop(ctx); err != nil {
			return fmt.Errorf("dropping database %s: %w", name, err)
		}
	}
	return nil
}

func createCollection(ctx context.Context, c *mongo.Client, head bson.Raw) (*mongo.Collection, error) {
	dbName := head.Lookup("db").StringValue()
	name := head.Lookup("name").StringValue()
	if dbName == "" || name == "" || slices.Contains(systemDatabases, dbName) {
		return nil, fmt.Errorf("the dump is damaged: collection record %s", head)
	}
	db := c.Database(dbName)
	create := bson.D{{Key: "create", Value: name}}
	if opts, err := head.LookupErr("options"); err == nil {
		if doc, ok := opts.DocumentOK(); ok {
			elems, _ := doc.Elements()
			for _, e := range elems {
				create = append(create, bson.E{Key: e.Key(), Value: e.Value()})
			}
		}
	}
	if err := db.RunCommand(ctx, create).Err(); err != nil {
		return nil, fmt.Errorf("creating %s.%s: %w", dbName, name, err)
	}
	if idx, err := head.LookupErr("indexes"); err == nil {
		if arr, ok := idx.ArrayOK(); ok {
			if vals, _ := arr.Values(); len(vals) > 0 {
				if err := db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: name}, {Key: "indexes", Value: idx}}).Err(); err != nil {
					return nil, fmt.Errorf("creating the indexes of %s.%s: %w", dbName, name, err)
				}
			}
		}
	}
	return db.Collection(name), nil
}

// safetyDump saves the instance's current data to path (atomically)
// before a restore replaces it, so that a restore never loses data.
func safetyDump(ctx context.Context, c *mongo.Client, path string) error {
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, _, err := dump(ctx, c, f); err != nil {
		return fmt.Errorf("saving the current data to %s before the restore: %w", path, err)
	}
	return f.Commit()
}
