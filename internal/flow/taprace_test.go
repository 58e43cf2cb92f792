package flow

import (
	"io"
	"os"
	"testing"
)

// TestTapSeesBytesArrivingMidRound writes to the source while the pump is
// busy with a round (a consumer draining, a tap just added), many times:
// a tap with room must receive every byte written after it was added,
// even when the bytes arrive between the tap's tee and the consumer's
// splice.
func TestTapSeesBytesArrivingMidRound(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 100
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) { tapRounds(t, rounds, Config{Copy: eng.copy}) })
	}
}

func tapRounds(t *testing.T, rounds int, cfg Config) {
	for i := range rounds {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cr, cw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, cr); close(drained) }()
		s, err := Start(r, []Consumer{{Name: "c", W: cw}}, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Keep the pump busy: bytes flow to the consumer while the tap
		// is added.
		if _, err := w.Write(make([]byte, 1<<16)); err != nil {
			t.Fatal(err)
		}
		tap, err := s.AddTap(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("hello tap\n")
		for range 64 {
			if _, err := w.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		got, err := io.ReadAll(tap)
		if err != nil {
			t.Fatalf("round %d: read tap: %v", i, err)
		}
		if want := 64 * len(msg); len(got) < want {
			// The tap may also hold some of the zeros written before it.
			t.Fatalf("round %d: tap got %d bytes, want at least %d", i, len(got), want)
		}
		s.Close()
		<-drained
		r.Close()
	}
}
