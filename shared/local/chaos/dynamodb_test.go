package chaos

import (
	"math"
	"testing"
)

// TestPickIsSeededAndRated: the same seed faults the same requests (a soak
// can be replayed), the share faulted is the rate, and a transaction
// conflict is only ever made for TransactWriteItems.
func TestPickIsSeededAndRated(t *testing.T) {
	tests := []struct {
		name string
		rate float64
		op   string
	}{
		{"none", 0, "PutItem"},
		{"a tenth of the puts", 0.1, "PutItem"},
		{"a third of the transactions", 0.3, "TransactWriteItems"},
		{"all", 1, "Query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := NewDynamoDBFaults(tt.rate, 42), NewDynamoDBFaults(tt.rate, 42)
			const n = 20000
			for i := range n {
				ka, kb := a.pick(tt.op), b.pick(tt.op)
				if ka != kb {
					t.Fatalf("request %d: %q and %q from the same seed", i, ka, kb)
				}
				if ka == TransactionConflict && tt.op != "TransactWriteItems" {
					t.Fatalf("request %d: a transaction conflict for %s", i, tt.op)
				}
			}
			calls, by := a.Counts()
			faulted := 0
			for _, v := range by {
				faulted += v
			}
			if got := float64(faulted) / float64(calls); calls != n || math.Abs(got-tt.rate) > 0.02 {
				t.Errorf("%d of %d requests faulted (%.3f), want a share of %.2f", faulted, calls, got, tt.rate)
			}
			if tt.op == "TransactWriteItems" && by[TransactionConflict] == 0 {
				t.Errorf("faults %v: no transaction conflict for transactions", by)
			}
		})
	}
}
