package pipeline

import (
	"context"
	"testing"
)

// TestFakesRunWholeStages: the fakes are faithful enough for a publish and a
// verification that finds nothing wrong, so a broken call in the error
// tests is the only thing that fails.
func TestFakesRunWholeStages(t *testing.T) {
	f := newFixture(t)
	changes := f.mustPublish(t)
	if got := len(f.sheetMem.rows); got != len(changes) {
		t.Fatalf("audit rows after WriteAudit() = %d, want %d", got, len(changes))
	}
	v, err := f.runner(t).Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if !v.OK() || v.Matched != len(changes) {
		t.Errorf("Verify() = %s (matched %d), want OK with %d rows matched", v.Summary(), v.Matched, len(changes))
	}
}

// TestFakesAttest: with the fake signer and digest store, a run's
// attestation signs a digest that the next verification checks.
func TestFakesAttest(t *testing.T) {
	f := newFixture(t)
	f.opts.Signer, f.opts.Digests = mustFakeSigner(t), newFakeDigests()
	f.mustPublish(t)
	ctx := context.Background()
	a, err := f.runner(t).Attest(ctx, RunRecord{RunID: runR1, StartedAt: t0, Changes: 2})
	if err != nil {
		t.Fatalf("Attest(%s) = %v", runR1, err)
	}
	if a.Digest.Name == "" || a.Digest.Withheld != "" {
		t.Fatalf("Attest(%s) digest = %+v, want one signed", runR1, a.Digest)
	}
	v, err := f.runner(t).Verify(ctx)
	if err != nil || !v.OK() || v.Digests != 1 {
		t.Errorf("Verify() after Attest = %s (%d digests), %v; want OK with 1 digest", v.Summary(), v.Digests, err)
	}
}
