// sampler_test.go holds the testing.B side of sampler.go: one tick of
// procstats over 200 sleepers, the raw os.ReadFile baseline and procfs, plus
// a smoke test of RunSampler.

package bench

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/shipote/shipote/internal/pidstat"
	"github.com/shipote/shipote/internal/procstats"
)

// benchSleepers starts n sleepers for a benchmark and stops them at its end.
func benchSleepers(b *testing.B, n int) []int {
	b.Helper()
	pids, stop, err := startSleepers(context.Background(), n)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	return pids
}

// BenchmarkSamplerScanTree is one tick: Scan of every process on the host,
// then Tree over 200 sleepers. us/proc is per process scanned.
func BenchmarkSamplerScanTree(b *testing.B) {
	pids := benchSleepers(b, 200)
	r, err := procstats.NewReader("")
	if err != nil {
		b.Fatal(err)
	}
	scanned := 0
	b.ResetTimer()
	for b.Loop() {
		tab, err := r.Scan()
		if err != nil {
			b.Fatal(err)
		}
		if st, _ := tab.Tree(pids, nil); len(st.Pids) != len(pids) {
			b.Fatalf("tree found %d of %d", len(st.Pids), len(pids))
		}
		scanned = tab.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(scanned), "us/proc")
}

// BenchmarkSamplerRawStat is the baseline: os.ReadFile of 200 sleepers'
// /proc/<pid>/stat, parsed by internal/pidstat.
func BenchmarkSamplerRawStat(b *testing.B) {
	pids := benchSleepers(b, 200)
	b.ResetTimer()
	for b.Loop() {
		for _, pid := range pids {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := pidstat.Parse(data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(pids)), "us/proc")
}

// BenchmarkSamplerProcfsStat is prometheus/procfs's Proc+Stat over the same
// 200 sleepers, for reference.
func BenchmarkSamplerProcfsStat(b *testing.B) {
	pids := benchSleepers(b, 200)
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := procfsStatOnce(fs, pids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(pids)), "us/proc")
}

func TestRunSamplerQuick(t *testing.T) {
	r := NewReport(nil)
	if err := RunSampler(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	if len(r.Rows()) != 3 {
		t.Fatalf("rows %d", len(r.Rows()))
	}
	for _, row := range r.Rows() {
		t.Log(FormatRow(row))
	}
}
