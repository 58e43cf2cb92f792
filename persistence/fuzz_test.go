// This file fuzzes the state file decoder: any bytes decode or fail without a
// panic, and a state that decodes survives a save and a load unchanged,
// entries kept byte for byte included.

package persistence_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/shipote/shipote/persistence"
)

// addStateSeeds adds every state file under testdata (the original daemon's
// included) to the corpus.
func addStateSeeds(f *testing.F) {
	f.Helper()
	for _, pattern := range []string{"testdata/*.json", "testdata/original/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`{"version":4,"workspaces":[null,1,"x",{"id":"a","spec":{"label":"l","Label":"m"}}]}`))
	f.Add([]byte(`{"version":4,"workspaces":[{"id":"a","spec":{"label":"a","label":"b"}}]}`))
}

func FuzzDecode(f *testing.F) {
	addStateSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, err := persistence.Decode(data)
		if err != nil {
			if st != nil {
				t.Fatalf("a state with the error %v", err)
			}
			return
		}
		out, err := persistence.Encode(st)
		if err != nil {
			t.Fatalf("a decoded state does not encode: %v", err)
		}
		again, _, err := persistence.Decode(out)
		if err != nil {
			t.Fatalf("an encoded state does not decode: %v\n%s", err, out)
		}
		want := *st
		want.Version = persistence.CurrentVersion
		if !sameState(again, &want) {
			t.Fatalf("decode, encode, decode differs:\n got %+v\nwant %+v\nencoded %s", again, &want, out)
		}
		for i := range st.Kept {
			if !bytes.Contains(out, st.Kept[i].Raw) {
				t.Fatalf("kept entry %d is not written as read", i)
			}
		}
		// A second save writes the same bytes.
		out2, err := persistence.Encode(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out2, out) {
			t.Fatalf("second save differs:\n%s\n%s", out2, out)
		}
	})
}
