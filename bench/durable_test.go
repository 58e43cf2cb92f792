package bench

import (
	"context"
	"strings"
	"testing"
)

// Each durable peer stores every create from concurrent clients, and keeps
// it across a reopen of the same directory.
func TestDurableStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(dir string) (durableStore, error)
	}{{"bbolt", openBolt}, {"sqlite", openSQLite}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := tc.open(dir)
			if err != nil {
				t.Fatal(err)
			}
			rate, err := concurrentCreates(context.Background(), s, 64, 8)
			if err != nil {
				s.close()
				t.Fatal(err)
			}
			if rate <= 0 {
				t.Errorf("rate %v", rate)
			}
			if err := s.create(context.Background(), "dup-check", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			s, err = tc.open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if n, err := s.count(context.Background()); err != nil || n != 65 {
				t.Errorf("after reopening: %d entries, %v; want 65", n, err)
			}
		})
	}
}

func TestDurableStoreErrors(t *testing.T) {
	notDir := t.TempDir() + "/missing/deeper"
	for _, tc := range []struct {
		name string
		open func(dir string) (durableStore, error)
		want string
	}{{"bbolt", openBolt, "bbolt: "}, {"sqlite", openSQLite, "sqlite: "}} {
		if s, err := tc.open(notDir); err == nil || !strings.Contains(err.Error(), tc.want) {
			if s != nil {
				s.close()
			}
			t.Errorf("%s in a missing directory: %v, want an error starting %q", tc.name, err, tc.want)
		}
	}
}
