// durable.go holds the peers of the durable-creates figure: stores that
// make each create durable before answering, driven by the same number of
// concurrent clients on the same disk as the engine. go.etcd.io/bbolt's
// Batch (what etcd's backend builds on) coalesces concurrent updates into
// one fsynced transaction; SQLite in WAL mode with synchronous=FULL fsyncs
// the log at every commit. Each create stores the workspace's ID and spec as
// JSON, the entry the engine's snapshot holds.
//
// These stores are dependencies of bench/ only; bench/ is part of the main
// module, so they appear in its go.mod, but no package outside bench/
// imports them.

package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/shipote/shipote/messages"
)

// durableStore is one peer of the durable-creates figure.
type durableStore interface {
	// create stores one workspace entry and returns once it is durable.
	create(ctx context.Context, id string, spec []byte) error
	// count returns how many entries are stored.
	count(ctx context.Context) (int, error)
	close() error
}

// concurrentCreates runs creates workspace creates from clients goroutines
// against store, each create durable before the next of its client, and
// returns creates per second. It checks every create was stored.
func concurrentCreates(ctx context.Context, store durableStore, creates, clients int) (float64, error) {
	per := creates / clients
	specs := make([][][]byte, clients)
	ids := make([][]string, clients)
	for c := range clients {
		for i := range per {
			b, err := json.Marshal(messages.WorkspaceSpec{Label: fmt.Sprintf("c%d-%d", c, i)})
			if err != nil {
				return 0, err
			}
			specs[c] = append(specs[c], b)
			ids[c] = append(ids[c], messages.NewID())
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := store.create(ctx, ids[c][i], specs[c][i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	n, err := store.count(ctx)
	if err != nil {
		return 0, err
	}
	if n != per*clients {
		return 0, fmt.Errorf("bench: store holds %d entries after %d creates", n, per*clients)
	}
	return float64(per*clients) / elapsed.Seconds(), nil
}

// withTempStore opens a store in a new directory under the system's
// temporary directory (the engine's disk in this harness), runs f, and
// removes it.
func withTempStore(open func(dir string) (durableStore, error), f func(durableStore) error) error {
	dir, err := os.MkdirTemp("", "shipote-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := open(dir)
	if err != nil {
		return err
	}
	ferr := f(s)
	if err := s.close(); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

var workspacesBucket = []byte("workspaces")

// boltStore is bbolt with each create in a db.Batch call, bbolt's default
// batch size (1000) and delay (10 ms), NoSync off: every batch is fsynced.
type boltStore struct{ db *bolt.DB }

func openBolt(dir string) (durableStore, error) {
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("bbolt: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(workspacesBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("bbolt: %w", err)
	}
	return &boltStore{db: db}, nil
}

func (s *boltStore) create(_ context.Context, id string, spec []byte) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(workspacesBucket).Put([]byte(id), spec)
	})
}

func (s *boltStore) count(context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(workspacesBucket).Stats().KeyN
		return nil
	})
	return n, err
}

func (s *boltStore) close() error { return s.db.Close() }

// sqliteStore is SQLite (modernc.org/sqlite, pure Go) in WAL mode with
// synchronous=FULL, so each committed INSERT has fsynced the log. SQLite
// admits one writer at a time, so the clients share one connection and
// queue for it in database/sql's pool rather than retry on SQLITE_BUSY.
type sqliteStore struct{ db *sql.DB }

func openSQLite(dir string) (durableStore, error) {
	dsn := "file:" + filepath.Join(dir, "state.sqlite") +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	var mode string
	var syncMode int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := db.QueryRow("PRAGMA synchronous").Scan(&syncMode); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if mode != "wal" || syncMode != 2 {
		db.Close()
		return nil, fmt.Errorf("sqlite: journal_mode %q synchronous %d, want wal and 2 (FULL)", mode, syncMode)
	}
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS workspaces (id TEXT PRIMARY KEY, spec BLOB NOT NULL)"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return &sqliteStore{db: db}, nil
}

func (s *sqliteStore) create(ctx context.Context, id string, spec []byte) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO workspaces (id, spec) VALUES (?, ?)", id, spec)
	return err
}

func (s *sqliteStore) count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM workspaces").Scan(&n)
	return n, err
}

func (s *sqliteStore) close() error { return s.db.Close() }
