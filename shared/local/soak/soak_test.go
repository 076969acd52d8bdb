package soak_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/local/soak"
)

// logWriter sends the soak's round lines to the test log.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func runSoak(t *testing.T, cfg soak.Config) soak.Result {
	t.Helper()
	cfg.Dir = t.TempDir()
	cfg.Log = logWriter{t}
	res, err := soak.Run(context.Background(), cfg)
	for _, p := range res.Problems {
		t.Error(p)
	}
	for _, p := range res.Masked {
		t.Logf("known gap (writer info names a masked save): %s", p)
	}
	if err != nil {
		t.Fatalf("soak.Run() error = %v", err)
	}
	if !res.OK() {
		t.Errorf("soak found problems: %s", res.Line())
	}
	t.Logf("edits by kind %v; changes expected by kind %v", res.EditsByOp, res.ExpectedByKind)
	return res
}

// TestSoakShort is the soak's short form: a few rounds on small sheets with
// 30 % of the Smartsheet calls faulted.
func TestSoakShort(t *testing.T) {
	res := runSoak(t, soak.Config{Seed: 1, Rounds: 4, EditsPerRound: 40, Sheets: 2, Rows: 60, Weeks: 4, FaultRate: 0.3})
	t.Log(res.Line())
	if res.Expected == 0 || res.Faulted == 0 || res.Edits != 4*40 {
		t.Errorf("soak did too little: %s", res.Line())
	}
	// The seed plays every kind of edit and finds every kind of change.
	for _, op := range []soak.Op{soak.OpValue, soak.OpBoth, soak.OpRevert, soak.OpReapply, soak.OpSameValue, soak.OpUntracked,
		soak.OpDelete, soak.OpLateRow, soak.OpOpenRow, soak.OpWeekMove, soak.OpSnapshot} {
		if res.EditsByOp[op] == 0 {
			t.Errorf("no %s edit in the short soak", op)
		}
	}
	for _, k := range []string{"VALUE_CHANGED", "ROW_DELETED", "ROW_ADDED_LATE", "WEEK_MOVED"} {
		if res.ExpectedByKind[k] == 0 {
			t.Errorf("no %s change in the short soak", k)
		}
	}
}

// TestSoakWithoutWriterInfo: writer info can name whoever saved a row
// after the change without changing a cell (the soak counts it,
// masked_writer_info); with SkipWriterInfo cell history names every cell
// change's author, and the same seed has none.
func TestSoakWithoutWriterInfo(t *testing.T) {
	cfg := soak.Config{Seed: 1, Rounds: 8, EditsPerRound: 120, Sheets: 2, Rows: 150, Weeks: 4, FaultRate: 0.1}
	tests := []struct {
		skip       bool
		wantMasked bool
	}{
		{skip: false, wantMasked: true},
		{skip: true, wantMasked: false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("SkipWriterInfo=%v", tt.skip), func(t *testing.T) {
			cfg := cfg
			cfg.SkipWriterInfo = tt.skip
			res := runSoak(t, cfg)
			t.Log(res.Line())
			if got := res.MaskedWriterInfo > 0; got != tt.wantMasked {
				t.Errorf("masked_writer_info = %d, want more than 0: %v", res.MaskedWriterInfo, tt.wantMasked)
			}
		})
	}
}

// TestSoak is `make soak`: SOAK_ROUNDS rounds of SOAK_EDITS edits (default
// 120) with seed SOAK_SEED (default 1) on SOAK_SHEETS × SOAK_ROWS rows
// (default 4 × 300), SOAK_FAULT_RATE of the calls faulted (default 0.33).
// It runs only when SOAK_ROUNDS is set.
func TestSoak(t *testing.T) {
	rounds := envInt(t, "SOAK_ROUNDS", 0)
	if rounds == 0 {
		t.Skip("SOAK_ROUNDS is not set (make soak sets it)")
	}
	res := runSoak(t, soak.Config{
		Seed: uint64(envInt(t, "SOAK_SEED", 1)), Rounds: rounds, EditsPerRound: envInt(t, "SOAK_EDITS", 120),
		Sheets: envInt(t, "SOAK_SHEETS", 4), Rows: envInt(t, "SOAK_ROWS", 300), Weeks: 6, FaultRate: envRate(t, "SOAK_FAULT_RATE", 0.33),
		SkipWriterInfo: envInt(t, "SOAK_SKIP_WRITER_INFO", 0) == 1,
	})
	t.Log(res.Line())
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	n, err := soak.EnvInt(name, def)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func envRate(t *testing.T, name string, def float64) float64 {
	t.Helper()
	f, err := soak.EnvRate(name, def, false)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
