package pipeline

import (
	"context"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// TestConfirmReversals: a put-back keeps in Reverses only the changes it
// names that were unauthorized (A → B authorized, B → C not, C → A reverses
// C's change alone); one whose originals were all authorized, or expired, is
// an ordinary change.
func TestConfirmReversals(t *testing.T) {
	recs := map[string]ChangeRecord{
		"auth":    {Change: audit.Change{ChangeID: "auth", Status: audit.StatusAuthorized}},
		"unauth1": {Change: audit.Change{ChangeID: "unauth1", Status: audit.StatusUnauthorized}},
		"unauth2": {Change: audit.Change{ChangeID: "unauth2", Status: audit.StatusUnauthorized}},
		"review":  {Change: audit.Change{ChangeID: "review", Status: audit.StatusNeedsReview}},
	}
	tests := []struct {
		name, reverses, want string
	}{
		{"none", "", ""},
		{"one unauthorized", "unauth1", "unauth1"},
		{"authorized first in the chain", "auth, unauth1", "unauth1"},
		{"two unauthorized", "unauth1, unauth2", "unauth1, unauth2"},
		{"only authorized", "auth", ""},
		{"to review is not confirmed", "review", ""},
		{"expired", "gone, unauth2", "unauth2"},
	}
	f := newFixture(t)
	f.store.ChangeRecordsFunc = func(_ context.Context, ids []string) (map[string]ChangeRecord, error) {
		out := map[string]ChangeRecord{}
		for _, id := range ids {
			if rec, ok := recs[id]; ok {
				out[id] = rec
			}
		}
		return out, nil
	}
	r := f.runner(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := []audit.Change{{ChangeID: "back", Reverses: tt.reverses}}
			if err := r.confirmReversals(context.Background(), cs); err != nil {
				t.Fatal(err)
			}
			if got := cs[0].Reverses; got != tt.want {
				t.Errorf("confirmReversals(Reverses %q) = %q, want %q", tt.reverses, got, tt.want)
			}
		})
	}
}
